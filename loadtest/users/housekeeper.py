"""``Housekeeper``: idle detection, stuck-chat release (the seed's cron jobs) and the no-answer
timeout, on the scenario's intervals.

One per run, also in distributed mode: the user that wins the housekeeper's advisory lock
runs the jobs, any other stops at once.
"""

from __future__ import annotations

import math

from locust import task
from locust.exception import StopUser

from loadtest.reporting import attempt
from loadtest.runtime import current
from loadtest.users.base import ChatUser
from sim.errors import ChatLabError

#: advisory-lock key of the housekeeper (operators use their id), in the run's namespace
HOUSEKEEPER_LOCK = -1


class Housekeeper(ChatUser):
    role = "housekeeper"
    fixed_count = 1

    def on_start(self) -> None:
        super().on_start()
        run = current()
        if not self.db.try_claim(run.lock_namespace, HOUSEKEEPER_LOCK):  # another worker runs the jobs
            self.db.close()
            raise StopUser()
        run.go.wait()  # the jobs' intervals count from scenario t = 0
        jobs = run.scenario.jobs
        self.next_idle = jobs.idle_detection_interval if jobs.idle_detection_interval > 0 else math.inf
        self.next_stuck = jobs.stuck_check_interval if jobs.stuck_check_interval > 0 else math.inf
        self.next_answer = jobs.reassign_check_interval if jobs.reassign_after is not None else math.inf

    @task
    def jobs(self) -> None:
        run = current()
        jobs, clock = run.scenario.jobs, run.clock
        due = min(self.next_idle, self.next_stuck, self.next_answer)
        if not math.isfinite(due):
            clock.sleep(run.scenario.duration)  # every job off
            return
        clock.sleep_until(due)
        if run.stopping:
            return
        now = clock.now()
        try:
            if now >= self.next_idle:
                self.next_idle += jobs.idle_detection_interval
                run.count("idle_released", self.db.release_idle_operator_chats(clock.wall(jobs.idle_after)))
            if now >= self.next_stuck:
                self.next_stuck += jobs.stuck_check_interval
                if run.target is not None:  # an outside target: its own stuck-release job, in one call
                    run.count("stuck_released", self.db.release_stuck_chats(clock.wall(jobs.stuck_after)))
                else:
                    for stuck in self.db.detect_stuck_chats(clock.wall(jobs.stuck_after) / 3600.0):
                        # the simulation's reason
                        if attempt(self.db.release_and_reassign_chat, stuck.chat_id, "stuck_timeout")[0]:
                            run.count("stuck_released")
            if now >= self.next_answer:
                self.next_answer += jobs.reassign_check_interval
                run.count("unanswered_released", self.db.release_unanswered_chats(clock.wall(jobs.reassign_after)))
        except ChatLabError:
            run.count("housekeeper_errors")
