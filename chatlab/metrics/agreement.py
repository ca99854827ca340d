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


def _half(run: Analysis, key: str) -> float | None:
    if run.interval is None:
        return None
    try:
        return _number(get_metric(run.interval, key))
    except KeyError:
        return None


@dataclass(frozen=True)
class Pair:
    """One policy run both ways on the same scenario (each side possibly pooled over seeds:
    :func:`chatlab.metrics.pool`, whose ``interval`` is each mean's 95 % half-width)."""

    policy: str
    simulation: Analysis
    load_test: Analysis

    def rows(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        """One dict per metric key: the policy, both values, their relative difference and — when both
        sides were replicated — the noise band of the difference and whether it is beyond it.

        Noise: the two means' half-widths combine as ``sqrt(h_sim^2 + h_db^2)`` (independent
        sides); a difference larger than that is *beyond the noise* (about a 95 % test)."""
        out = []
        for key in keys:
            sim, real = _metric(self.simulation, key), _metric(self.load_test, key)
            hs, hd = _half(self.simulation, key), _half(self.load_test, key)
            band = None if hs is None or hd is None else (hs ** 2 + hd ** 2) ** 0.5
            a, b = _number(sim), _number(real)
            beyond = None if band is None or a is None or b is None else bool(abs(b - a) > band)
            out.append({"policy": self.policy, "key": key, "simulation": sim, "load_test": real,
                        "relative_difference": relative_difference(sim, real), "simulation_ci95": hs,
                        "load_test_ci95": hd, "noise": band, "beyond_noise": beyond})
        return out


#: How far apart the two sides may be and still agree: 5 % of the simulation's value (the issue's bar).
TOLERANCE = 0.05
#: The key metrics whose agreement ``compare-real`` judges (``metrics.json``'s ``agreement``).
AGREEMENT_KEYS: tuple[str, ...] = (
    "counts.assignments", "assignment.repeat_rate", "assignment.premature_rate", "fairness.assignments.jain",
    "fairness.assignments.gini", "wait.mean_s", "wait.p50_s", "wait.p90_s", "wait.p99_s", "wait.service_level",
    "wait.abandonment_rate",
)


def within(simulation: Any, load_test: Any, noise: float | None = None, *, tolerance: float = TOLERANCE) -> bool:
    """Do the two values agree: ``|relative difference| <= tolerance``, or the difference inside the noise band?

    The noise band (``sqrt(h_sim^2 + h_db^2)``, the two 95 % half-widths) is there because a
    difference the replications cannot tell from chance is not a disagreement, however large in
    per cent (a p99 over a few hundred waits moves by more than 5 % from seed to seed).  Neither
    side measured (no served wait on either, say): they agree.  Only one side measured: they
    do not.
    """
    a, b = _number(simulation), _number(load_test)
    if a is None and b is None:
        return True
    if a is None or b is None:
        return False
    rel = relative_difference(a, b)
    if rel is not None and abs(rel) <= tolerance:
        return True
    return noise is not None and abs(b - a) <= noise


def agreement(pairs: Sequence[Pair], keys: Sequence[str] = AGREEMENT_KEYS, *,
              tolerance: float = TOLERANCE) -> dict[str, Any]:
    """The ``agreement`` object of a compare-real ``metrics.json``: per policy, per metric
    ``{sim, db, rel_diff, within}`` (plus each side's half-width and the noise band when replicated),
    each policy's ``all_within`` and the overall ``all_within``."""
    policies: dict[str, Any] = {}
    for pair in pairs:
        metrics = {}
        for r in pair.rows(keys):
            metrics[r["key"]] = {"sim": _number(r["simulation"]), "db": _number(r["load_test"]),
                                 "rel_diff": r["relative_difference"],
                                 "within": within(r["simulation"], r["load_test"], r["noise"], tolerance=tolerance),
                                 "sim_ci95": r["simulation_ci95"], "db_ci95": r["load_test_ci95"], "noise": r["noise"]}
        policies[pair.policy] = {"all_within": all(m["within"] for m in metrics.values()), "metrics": metrics}
    return {"tolerance": tolerance,
            "definition": "within = |rel_diff| <= tolerance, or |db - sim| <= noise = sqrt(sim_ci95^2 + db_ci95^2); "
                          "rel_diff = (db - sim) / |sim|",
            "all_within": all(p["all_within"] for p in policies.values()), "policies": policies}
