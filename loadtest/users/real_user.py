"""``RealUser``: a customer, one conversation at a time, taken from the open-loop arrival stream.

The simulation's own users (same arrival instants, exchanges, patience and think times:
``sim/population.py``), released at their instants by the feeder (``loadtest/listeners.py``);
a RealUser takes the next one, opens the chat, waits for each answer, thinks, writes again,
and ends the chat ``resolved`` — or ``abandoned`` when, ``patience`` after writing, nobody
has taken it, as the model's user does.
"""

from __future__ import annotations

import time
from typing import Any

from gevent.queue import Empty
from locust import task

from loadtest.acklog import ack
from loadtest.reporting import attempt
from loadtest.runtime import CLIENT_POLL, Runtime, current
from loadtest.users.base import ChatUser
from sim.errors import ChatLabError
from sim.population import Arrival


class RealUser(ChatUser):
    role = "real_user"
    weight = 1

    @task
    def next_conversation(self) -> None:
        run = current()
        try:
            arrival = run.arrivals.get(timeout=0.5)
        except Empty:
            return
        run.lateness.append(max(0.0, run.clock.now() - arrival.time))
        try:
            self.converse(run, arrival)
        except ChatLabError:
            run.count("conversations_failed")  # already a Locust failure; next arrival

    def converse(self, run: Runtime, arrival: Arrival) -> None:
        """Open the chat; per exchange: wait for the answer, think, write again (or end it)."""
        clock, db = run.clock, self.db
        real_user_id = arrival.user_id  # the population's: a returning user keeps theirs (known agent)
        chat_id = db.real_user_message(real_user_id, f"hello from user {real_user_id}", None, arrival.topic)
        run.count("chats_opened")
        ack("chat", chat=chat_id)
        for i in range(arrival.exchanges):
            if not self.wait_for_answer(run, chat_id, arrival.patience):
                return
            # the model's user starts thinking at the answer; we saw it a moment later (run.scenario_at)
            clock.sleep_until(self.answered_at + arrival.thinks[i])
            if run.stopping:
                return
            if i == arrival.exchanges - 1:
                if attempt(db.end_chat, chat_id, "resolved")[0]:
                    run.count("chats_resolved")
                    ack("end", chat=chat_id)
                return
            if not attempt(db.real_user_message, real_user_id, "reply", chat_id)[0]:
                run.count("chats_closed_elsewhere")
                return
            run.count("user_messages")
            ack("user_message", chat=chat_id)

    def wait_for_answer(self, run: Runtime, chat_id: int, patience: float) -> bool:
        """Wait until an operator answered my last message; False if the chat ended (or I gave up).

        Woken by the answer's notification (``loadtest/wakes.py``), as the model's user is woken
        at once; the chat is also looked at every ``poll_interval`` (without notifications: every
        2 scenario s) as a safety net.  As the model: ``patience`` after writing, and every
        ``patience`` after that, a chat still waiting for an operator is ended ``abandoned``.
        """
        clock, wakes = run.clock, run.wakes
        next_check = clock.now() + patience
        pol = run.scenario.policy
        if wakes is None:
            answered, look = None, min(CLIENT_POLL, pol.poll_interval)
        else:
            answered, look = wakes.chat(chat_id), pol.poll_interval
        try:
            return self._wait(run, chat_id, patience, next_check, answered, look)
        finally:
            if wakes is not None:
                wakes.forget(chat_id)

    def _wait(self, run: Runtime, chat_id: int, patience: float, next_check: float, answered: Any,
              look: float) -> bool:
        clock = run.clock
        while not run.stopping:
            if answered is None:
                time.sleep(run.poll_wall(look))
            else:  # until the answer, the next patience check or the safety-net look
                answered.wait(run.poll_wall(max(0.0, min(look, next_check - clock.now()))))
                answered.clear()
            status = self.db.chat_status(chat_id)
            if status is None or status[0] == "completed":
                run.count("chats_closed_elsewhere")
                return False
            state, replied_at, asked_at = status
            # an answer = an operator message after my last message (not the state: under the
            # legacy policy a replied chat can be taken again before I look)
            if replied_at is not None and (asked_at is None or replied_at > asked_at):
                self.answered_at = run.scenario_at(replied_at, clock.now())
                return True
            if clock.now() >= next_check:
                if state == "waiting_assignment":
                    if attempt(self.db.end_chat, chat_id, "abandoned")[0]:
                        run.count("chats_abandoned")
                    return False
                next_check += patience
        return False
