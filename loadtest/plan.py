"""Sizing a load-test run: how many RealUser Locust users, from the scenario's arrival rate.

Pure arithmetic on the scenario and the settings, no Locust or psycopg, so the tests and the
session can use it directly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loadtest.settings import LoadTestSettings
    from sim.scenario import Scenario

#: Never more RealUser connections than this by default; the session also caps the pool to
#: what the server's ``max_connections`` leaves (operators take two each).  ``--users`` overrides.
POOL_CAP = 200
HEADROOM = 1.5


def concurrent_conversations(rate: float, conversation_s: float) -> float:
    """Little's law: mean conversations in progress = arrival rate x mean conversation length."""
    return max(0.0, rate) * max(0.0, conversation_s)


def conversation_estimate(scenario: Scenario) -> float:
    """A generous mean conversation length (s): exchanges x (wait + handle + think).

    Only sizes the real-user pool (Little's law); the wait term is a guess of up to two
    minutes per message.  If it is too small the run says so (late arrivals note).
    """
    users, ops = scenario.users, scenario.operators
    patience = users.patience.mean
    wait = min(patience, 120.0) if math.isfinite(patience) else 120.0
    return max(1.0, users.exchanges.mean) * (wait + ops.handle_time.mean + users.think_time.mean)


def pool_size(peak_rate: float, conversation_s: float, workers: int = 1) -> int:
    """RealUsers for a peak rate, over all Locust workers: Little's law x headroom, +2 spare per worker."""
    return int(math.ceil(concurrent_conversations(peak_rate, conversation_s) * HEADROOM) + 2 * max(1, workers))


def pool_target(scenario: Scenario, settings: LoadTestSettings, now: float, *, lookahead: float | None = None) -> int:
    """RealUsers needed in total around scenario time ``now`` (peak rate in the next ``lookahead`` s).

    The shape runs on the master in distributed mode and Locust spreads the users over the
    workers, so this is the total; each worker only feeds its own share of the arrivals.
    """
    length = conversation_estimate(scenario)
    horizon = length if lookahead is None else lookahead
    samples = [now + horizon * k / 8 for k in range(9)]
    peak = max(float(scenario.rate_at(min(t, scenario.duration))) for t in samples)
    return int(min(settings.user_pool, pool_size(peak, length, settings.workers)))


def pool_limit(scenario: Scenario, duration: float, *, workers: int = 1, cap: int = POOL_CAP) -> int:
    """The largest RealUser pool (all workers) a run could need: the ceiling passed in the settings."""
    steps = 200
    peak = max(float(scenario.rate_at(duration * k / steps)) for k in range(steps + 1))
    return int(min(cap, pool_size(peak, conversation_estimate(scenario), workers)))
