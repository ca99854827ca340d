"""The CI gate: check a run's metrics against bounds and say, per bound, PASS or FAIL and by how much.

A bound reads one key of :func:`chatlab.metrics.compute_metrics` (dotted, e.g.
``assignment.repeat_rate``) and compares it with ``<=`` (a maximum) or ``>=`` (a minimum).
A value that cannot be measured (``None``: e.g. no served wait, so no p99) FAILS the bound:
a gate must not pass a run that produced no evidence.

``chatlab gate`` (``chatlab/commands/gate.py``) builds the bounds from its options, gets
the runs (simulated from a scenario, or read from a report dir / event log) and exits 0
when every bound holds for every run, 1 otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from chatlab.metrics import Analysis, get_metric
from sim.errors import ChatLabError


class GateError(ChatLabError):
    """A bound that makes no sense (negative rate, Jain above 1, unknown metric key)."""


@dataclass(frozen=True)
class Bound:
    """``metric <= limit`` (kind ``max``) or ``metric >= limit`` (kind ``min``)."""

    name: str
    key: str
    kind: Literal["max", "min"]
    limit: float
    unit: str = ""

    @property
    def operator(self) -> str:
        return "<=" if self.kind == "max" else ">="

    def describe(self) -> str:
        return f"{self.operator} {_fmt(self.limit, self.unit)}"

    def test_name(self) -> str:
        """The bound in the metric's own units, as a CI report names it: ``assignment.repeat_rate <= 0``."""
        return f"{self.key} {self.operator} {self.limit:g}"


@dataclass(frozen=True)
class Check:
    """One bound applied to one run."""

    run: str
    bound: Bound
    value: float | None

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        return self.value <= self.bound.limit if self.bound.kind == "max" else self.value >= self.bound.limit

    @property
    def margin(self) -> float | None:
        """How far inside the bound the value is: >= 0 holds, < 0 breaks it (None: unmeasurable)."""
        if self.value is None:
            return None
        return self.bound.limit - self.value if self.bound.kind == "max" else self.value - self.bound.limit

    @property
    def excess(self) -> float | None:
        """How far past the bound the value is (0 when it holds, None when unmeasurable)."""
        if self.value is None:
            return None
        gap = self.value - self.bound.limit if self.bound.kind == "max" else self.bound.limit - self.value
        return max(0.0, gap)

    def line(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        value = "n/a" if self.value is None else _fmt(self.value, self.bound.unit)
        text = f"{status}  {self.run}: {self.bound.name} = {value} (bound {self.bound.describe()})"
        if self.value is None:
            return text + ": not measurable in this run (no data), counted as a failure"
        if self.passed:
            return text + f": margin {_fmt(self.margin or 0.0, self.bound.unit)}"
        word = "over" if self.bound.kind == "max" else "under"
        return text + f": {_fmt(self.excess or 0.0, self.bound.unit)} {word} the bound"


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{100 * value:.4g}%"
    return f"{value:.6g}{(' ' + unit) if unit else ''}"


#: The bounds ``chatlab gate`` offers: option name -> (metric key, kind, unit, valid range).
BOUND_OPTIONS: dict[str, tuple[str, Literal["max", "min"], str, tuple[float, float]]] = {
    "max_repeat_rate": ("assignment.repeat_rate", "max", "%", (0.0, 1.0)),
    "max_premature_rate": ("assignment.premature_rate", "max", "%", (0.0, 1.0)),
    "max_p99_wait": ("wait.p99_s", "max", "s", (0.0, float("inf"))),
    "min_jain": ("fairness.assignments_per_online_hour.jain", "min", "", (0.0, 1.0)),
    "max_abandonment_rate": ("wait.abandonment_rate", "max", "%", (0.0, 1.0)),
    "min_service_level": ("wait.service_level", "min", "%", (0.0, 1.0)),
    "max_capacity_overshoot": ("guarantees.capacity_overshoot", "max", "", (0.0, float("inf"))),
    "max_fifo_violations": ("guarantees.fifo_violations", "max", "", (0.0, float("inf"))),
    "max_unanswered_hold": ("guarantees.longest_unanswered_hold_s", "max", "s", (0.0, float("inf"))),
    "max_offline_agent_wait": ("guarantees.offline_agent_wait_p90_s", "max", "s", (0.0, float("inf"))),
    "max_peak_share": ("guarantees.peak_share", "max", "", (1.0, float("inf"))),
}


def make_bounds(values: Mapping[str, float | None]) -> list[Bound]:
    """Bounds from option values (``None`` = not checked); raise :class:`GateError` on nonsense."""
    bounds = []
    for option, limit in values.items():
        if limit is None:
            continue
        if option not in BOUND_OPTIONS:
            raise GateError(f"unknown gate bound {option!r}; expected one of {sorted(BOUND_OPTIONS)}")
        key, kind, unit, (lo, hi) = BOUND_OPTIONS[option]
        if not (lo <= limit <= hi):
            flag = "--" + option.replace("_", "-")
            raise GateError(f"{flag} must be between {lo:g} and {hi:g}, got {limit:g}")
        bounds.append(Bound(option.split("_", 1)[1], key, kind, float(limit), unit))
    return bounds


def check_metrics(run: str, metrics: Mapping[str, Any], bounds: Sequence[Bound]) -> list[Check]:
    """Apply every bound to one metrics dict."""
    checks = []
    for bound in bounds:
        try:
            value = get_metric(metrics, bound.key)
        except KeyError:
            raise GateError(f"metric {bound.key!r} is not in the metrics of {run}") from None
        checks.append(Check(run, bound, None if value is None else float(value)))
    return checks


@dataclass(frozen=True)
class GateResult:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def lines(self) -> list[str]:
        failed = sum(not c.passed for c in self.checks)
        verdict = "gate PASSED" if self.passed else f"gate FAILED: {failed} of {len(self.checks)} checks"
        return [c.line() for c in self.checks] + [verdict]


def evaluate(runs: Sequence[Analysis], bounds: Sequence[Bound]) -> GateResult:
    """Every bound on every run."""
    if not bounds:
        raise GateError("no bound to check; give at least one of "
                        + ", ".join("--" + o.replace("_", "-") for o in BOUND_OPTIONS))
    return GateResult(tuple(c for run in runs for c in check_metrics(run.label, run.metrics, bounds)))
