"""Push mode on both sides: the same dispatch rule (``sim.dispatch`` and SQL's ``dispatch_waiting_chats``),
and the real dispatcher woken by NOTIFY — no polling — safe with two of them at once.

Agreement: random worlds driven in lock-step on ``ChatSystem`` and PostgreSQL (operators with
capacities and skills going on- and offline, chats arriving, replies, hand-backs, ends),
every dispatch compared assignment by assignment, for every policy, the rotation point
carried between dispatches; then the whole event logs must be equal.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from twins import Both

from chatlab.db.client import ChatDB
from chatlab.db.dispatcher import Dispatcher
from sim.dispatch import dispatch
from sim.errors import InvalidArgument
from sim.policies import POLICY_NAMES


@pytest.fixture
def both(db):  # noqa: ANN001, ANN201
    return Both(db)


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_a_dispatch_gives_the_same_chats_to_the_same_operators_on_both_sides(both: Both, policy: str) -> None:
    rng = random.Random(f"push-{policy}")
    ops = [both.operator(skills=rng.choice([(), ("tech",), ("billing", "tech")]), max_chats=rng.randint(1, 3))
           for _ in range(5)]
    user, made, t = 0, 0, 0.0
    for _step in range(40):
        t += rng.choice([1.0, 5.0, 30.0])
        both.at(t)
        roll = rng.random()
        if roll < 0.45:
            user += 1
            both.chat(user, rng.choice([None, None, "tech", "billing", "vip", "video"]))
        elif roll < 0.55:
            op = rng.choice(ops)
            both.online(op, not both.sim.is_online(op))
        else:
            held = [(c.assigned_operator_id, c.id) for c in both.sim.open_chats() if c.assigned_operator_id]
            if held:
                op, chat = rng.choice(held)
                if rng.random() < 0.8:
                    both.reply(op, chat)
                else:
                    both.end(chat)
        got = both.both(lambda s: dispatch(s, policy, now=t, salt=7),
                        lambda d: d.dispatch_waiting_chats(policy, 300.0, 7))
        made += len(got)
    assert made >= 10  # the worlds were busy enough to hand chats out
    both.logs_agree()


def _opened(db: ChatDB, users: range) -> list[int]:
    return [db.real_user_message(u, "hello") for u in users]


def test_the_dispatcher_is_woken_by_notify_not_by_its_safety_net(pg_uri: str, db: ChatDB) -> None:
    ops = [db.create_operator(f"op{i}", 1, True) for i in range(2)]
    waker = ChatDB(pg_uri, db.schema)
    waker.wake_dispatchers()
    stop = threading.Event()
    seen: list[tuple[int, int]] = []
    dispatcher = Dispatcher(pg_uri, db.schema, "exclude_last", safety_s=60.0,
                            on_assigned=lambda op, chat: seen.append((op, chat)))
    worker = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
    worker.start()
    try:
        time.sleep(0.5)  # its first dispatch found nothing: now it sleeps (for up to 60 s)
        started = time.monotonic()
        chats = _opened(waker, range(1, 3))
        while len(seen) < 2 and time.monotonic() - started < 5:
            time.sleep(0.02)
        assert time.monotonic() - started < 5, "not woken: the safety net is 60 s"
        assert sorted(seen) == sorted(zip(ops, chats))  # round the operators, one each
        assert dispatcher.wakes >= 1 and dispatcher.dispatches <= 4
        # a session that did not opt in wakes nobody (its NOTIFY costs pull-mode clients nothing)
        quiet = db.real_user_message(9, "hello")
        waker.operator_message(ops[0], chats[0], "answer")  # frees op 0, and notifies
        while len(seen) < 3 and time.monotonic() - started < 5:
            time.sleep(0.02)
        assert seen[2] == (ops[0], quiet)
    finally:
        stop.set()
        worker.join(10)
        waker.close()
    assert not worker.is_alive()


def test_two_dispatchers_at_once_never_give_a_chat_twice_or_overfill_an_operator(pg_uri: str, db: ChatDB) -> None:
    ops = [db.create_operator(f"op{i}", 2, True) for i in range(3)]
    stop = threading.Event()
    dispatchers = [Dispatcher(pg_uri, db.schema, "round_robin", safety_s=0.2) for _ in range(2)]
    threads = [threading.Thread(target=d.run, args=(stop,), daemon=True) for d in dispatchers]
    for th in threads:
        th.start()
    client = ChatDB(pg_uri, db.schema)
    client.wake_dispatchers()
    try:
        chats = _opened(client, range(1, 31))
        done: set[int] = set()
        deadline = time.monotonic() + 30
        while len(done) < len(chats) and time.monotonic() < deadline:
            for op in ops:  # the operators answer and close what they were pushed
                for chat in client.active_chats(op):
                    client.operator_message(op, chat, "answer")
                    client.end_chat(chat)
                    done.add(chat)
        assert done == set(chats)
    finally:
        stop.set()
        for th in threads:
            th.join(10)
        client.close()
    checks = db.integrity()
    assert checks["assignments"] == 30 and checks["double_assigned"] == 0 and checks["over_capacity"] == 0
    assert sum(d.assigned for d in dispatchers) == 30 and all(d.dispatches > 1 for d in dispatchers)


def test_a_bad_safety_interval_is_refused(pg_uri: str, db: ChatDB) -> None:
    with pytest.raises(InvalidArgument, match="safety interval"):
        Dispatcher(pg_uri, db.schema, safety_s=0)


def _news(listener: ChatDB) -> list[str]:
    return [n.payload for n in listener.conn.notifies(timeout=0.3)]


def test_clients_are_told_what_they_wait_for_by_chatlab_news(pg_uri: str, db: ChatDB) -> None:
    """Migration 022: an operator's client hears of a chat given to it (a), a chat that left it (f) and a user
    writing to a chat it holds (w); a real user's client hears of the answer (c) — only from sessions that
    opted in, and the client of a lab in another schema hears none of it."""
    from loadtest_wakes_probe import Recorder

    ops = [db.create_operator(f"op{i}", 1, True) for i in range(2)]
    listener = ChatDB(pg_uri, db.schema)
    listener.listen_news()
    client = ChatDB(pg_uri, db.schema)
    s = db.schema
    try:
        quiet = db.real_user_message(1, "hello")  # db did not opt in: no news of anything it does
        assert db.assign_chat_to_operator(ops[0], "legacy") == quiet
        assert _news(listener) == []
        client.wake_dispatchers()
        client.operator_message(ops[0], quiet, "answer")
        assert _news(listener) == [f"{s}:f:{ops[0]}", f"{s}:c:{quiet}"]
        assert client.assign_chat_to_operator(ops[0], "legacy") == quiet  # legacy: the replied chat again
        assert _news(listener) == [f"{s}:a:{ops[0]}"]
        client.real_user_message(1, "reply", quiet)  # its user writes to the chat op 0 holds
        assert _news(listener) == [f"{s}:w:{ops[0]}"]
        fresh = client.real_user_message(2, "hello")  # a new chat in the queue: no operator's business yet
        assert _news(listener) == []
        assert client.dispatch_waiting_chats("exclude_last") == [(ops[1], fresh)]
        assert _news(listener) == [f"{s}:a:{ops[1]}"]
        client.end_chat(fresh)
        assert _news(listener) == [f"{s}:f:{ops[1]}"]
        # the process-side listener turns them into wakes of the right loops only
        wakes = Recorder(s)
        for payload in (f"{s}:a:{ops[0]}", f"{s}:f:{ops[1]}", f"{s}:c:{quiet}", f"other:f:{ops[0]}", f"{s}:x:y"):
            wakes.deliver(payload)
        assert wakes.fired == [("worker", ops[0]), ("worker", ops[1]), ("poller", ops[1]), ("chat", quiet)]
    finally:
        listener.close()
        client.close()
