"""Sizing a load-test run: how many RealUser Locust users and how long things take.

Pure arithmetic, no Locust or psycopg, so the tests and the runner can use it directly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loadtest.config import LoadTestConfig
    from loadtest.flowparams import FlowParams

#: Never more RealUser connections than this by default; the runner also caps the pool to
#: what the server's ``max_connections`` leaves (operators take two each).  ``--users`` overrides.
POOL_CAP = 200
HEADROOM = 1.5


def concurrent_conversations(rate: float, conversation_s: float) -> float:
    """Little's law: mean conversations in progress = arrival rate x mean conversation length."""
    return max(0.0, rate) * max(0.0, conversation_s)


def pool_size(peak_rate: float, conversation_s: float, workers: int = 1) -> int:
    """RealUsers for a peak rate, over all Locust workers: Little's law x headroom, +2 spare per worker."""
    return int(math.ceil(concurrent_conversations(peak_rate, conversation_s) * HEADROOM) + 2 * max(1, workers))


def pool_target(flows: FlowParams, config: LoadTestConfig, now: float, *, lookahead: float | None = None) -> int:
    """RealUsers needed in total around scenario time ``now`` (peak rate in the next ``lookahead`` s).

    The shape runs on the master in distributed mode and Locust spreads the users over the
    workers, so this is the total; each worker only feeds its own share of the arrivals.
    """
    horizon = flows.conversation_estimate() if lookahead is None else lookahead
    samples = [now + horizon * k / 8 for k in range(9)]
    peak = max(float(flows.rate_at(min(t, flows.duration))) for t in samples)
    return int(min(config.user_pool, pool_size(peak, flows.conversation_estimate(), config.workers)))


def pool_limit(flows: FlowParams, duration: float, *, workers: int = 1, cap: int = POOL_CAP) -> int:
    """The largest RealUser pool (all workers) a run could need: the ceiling passed in the config."""
    steps = 200
    peak = max(float(flows.rate_at(duration * k / steps)) for k in range(steps + 1))
    return int(min(cap, pool_size(peak, flows.conversation_estimate(), workers)))
