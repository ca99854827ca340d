"""The sleeping pollers' arithmetic: a skipped poll must land on the very float SimPy would have.

``next_tick`` jumps many poll intervals at once; these tests replay the one-add-at-a-time sum
(what repeated ``env.timeout(poll)`` computes) and demand bit-identical ticks, across binade
boundaries and for steps that are not exact in binary.  The pool's order for equal ticks is
the chains' rank, then falling-asleep order.
"""

from __future__ import annotations

import numpy as np
import pytest
import simpy

from sim.pollgrid import PollPool, at, next_tick


def _iterated(tick: float, step: float, target: float) -> float:
    while tick < target:
        tick += step
    return tick


@pytest.mark.parametrize("step", [5.0, 2.0, 60.0, 0.1, 2.5, 7.3])
def test_next_tick_is_the_iterated_float_sum(step: float) -> None:
    rng = np.random.default_rng(7)
    for _ in range(60):
        start = float(rng.uniform(0, 3000)) if rng.random() < 0.8 else float(rng.integers(0, 3000))
        target = start + float(rng.uniform(0, 300 * step))
        assert next_tick(start, step, target) == _iterated(start, step, target)


def test_next_tick_crosses_binades_and_handles_zero() -> None:
    for start in (0.0, 1e-9, 0.3, 1023.999999, 65535.123456789):
        for target in (start, start + 1.0, 2048.0, 70_000.0):
            assert next_tick(start, 5.0, target) == _iterated(start, 5.0, target)
    with pytest.raises(ValueError):
        next_tick(1.0, 0.0, 2.0)


def test_pool_orders_equal_ticks_by_rank_then_arrival() -> None:
    pool = PollPool(5.0)
    pool.add("late", 10.0, (1, 5.0, 2))
    pool.add("early", 10.0, (0, -5.0, 3))
    pool.add("first", 10.0, (1, 0.0, 1))
    pool.add("other grid", 12.5, (1, 7.5, 4))
    assert pool.due(3.0) == 10.0
    assert pool.pop_due(10.0) == ["early", "first", "late"]
    assert pool.due(11.0) == 12.5
    pool.discard("other grid")
    assert len(pool) == 0 and pool.due(11.0) is None


def test_pool_advances_stale_ticks_along_the_grid() -> None:
    pool = PollPool(5.0)
    pool.add("a", 3.3, (1, 0.0, 0))
    assert pool.due(1000.0) == _iterated(3.3, 5.0, 1000.0)
    assert pool.tick_of("a", 2000.0) == _iterated(3.3, 5.0, 2000.0)
    assert pool.tick_of("nobody", 0.0) is None


def test_at_fires_at_exactly_the_given_float() -> None:
    env = simpy.Environment()
    seen: list[float] = []
    env.run(until=0.7)
    when = _iterated(0.3, 0.1, 5.0)  # a sum with rounding, not 0.7 + (when - 0.7)
    at(env, when, lambda _: seen.append(env.now))
    env.run()
    assert seen == [when]
