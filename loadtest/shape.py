"""``ChatLoadShape``: operators and the housekeeper from the start; the RealUser pool follows the arrival curve.

The pool only grows (a Locust user stopped mid-conversation would leave its chat dangling),
sized by Little's law from the rate a little ahead (``loadtest/plan.py``).  The run ends
after ``run_time_wall_s``: that is what bounds every load test.
"""

from __future__ import annotations

from locust import LoadTestShape

from loadtest.plan import pool_target
from loadtest.runtime import installed


class ChatLoadShape(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        run = installed()
        if run is None:
            return None
        settings = run.settings
        wall = self.get_run_time()
        if wall >= settings.run_time_wall_s:
            return None
        target = pool_target(run.scenario, settings, wall * settings.time_scale)
        self._pool = max(getattr(self, "_pool", 0), target)
        users = len(settings.operators) + 1 + self._pool
        return users, 100.0  # Locust's advised maximum: ~0.5 wall s for 50 users
