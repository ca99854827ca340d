"""``ChatLoadShape``: operators and the housekeeper from the start; the RealUser pool follows the arrival curve.

The run time counts from scenario t = 0 (``loadtest/listeners.py``: the clock starts once the
operators are in), so the scenario window is covered whole however long the spawning took.
The pool only grows (a Locust user stopped mid-conversation would leave its chat dangling),
sized by Little's law from the rate a little ahead (``loadtest/plan.py``).  The run ends
after ``run_time_wall_s``: that is what bounds every load test.
"""

from __future__ import annotations

from locust import LoadTestShape

from loadtest.plan import pool_target
from loadtest.runtime import installed
from loadtest.settings import START_WAIT_S


class ChatLoadShape(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        run = installed()
        if run is None:
            return None
        settings = run.settings
        wall = self.get_run_time()
        since_zero = run.clock.now() / settings.time_scale if run.go.is_set() else 0.0
        if since_zero >= settings.run_time_wall_s or wall >= settings.run_time_wall_s + START_WAIT_S:
            return None
        target = pool_target(run.scenario, settings, since_zero * settings.time_scale)
        self._pool = max(getattr(self, "_pool", 0), target)
        users = len(settings.operators) + 1 + self._pool
        return users, 100.0  # Locust's advised maximum: ~0.5 wall s for 50 users
