"""Simulation vs database on one scenario: the same metric from both sides and how far apart they are.

Both runs are analysed by the same :func:`chatlab.metrics.analyse` from the same event-log
schema, so a difference is a difference in *behaviour* (the model versus the real SQL
functions under real concurrency), not in bookkeeping.

The relative difference of a metric is ``(load_test - simulation) / |simulation|``.  It is
0 when both are 0 (e.g. the fix's repeat rate), and undefined (``None``) when only the
simulation's value is 0 or either side has no value (no served wait).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chatlab.metrics.analysis import Analysis
from chatlab.metrics.runlog import _num
from chatlab.metrics.schema import get_metric


def _number(value: Any) -> float | None:
    """A finite number, or None (for a flag, a missing value, NaN)."""
    return None if isinstance(value, bool) else _num(value)


def relative_difference(simulation: Any, load_test: Any) -> float | None:
    """``(load_test - simulation) / |simulation|``; 0 when both are 0; None when undefined."""
    sim, real = _number(simulation), _number(load_test)
    if sim is None or real is None:
        return None
    if sim == 0:
        return 0.0 if real == 0 else None
    return (real - sim) / abs(sim)


def _metric(run: Analysis, key: str) -> Any:
    try:
        return get_metric(run.metrics, key)
    except KeyError:
        return None


@dataclass(frozen=True)
class Pair:
    """One policy run both ways on the same scenario."""

    policy: str
    simulation: Analysis
    load_test: Analysis

    def rows(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        """One dict per metric key: the policy, both values and their relative difference."""
        out = []
        for key in keys:
            sim, real = _metric(self.simulation, key), _metric(self.load_test, key)
            out.append({"policy": self.policy, "key": key, "simulation": sim, "load_test": real,
                        "relative_difference": relative_difference(sim, real)})
        return out
