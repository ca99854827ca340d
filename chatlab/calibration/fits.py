"""Maximum-likelihood fits of durations: exponential, lognormal and gamma, chosen by AIC, judged by KS.

Why SciPy and not a hand-written optimiser: ``scipy.stats.<family>.fit`` is the field's
maximum-likelihood estimator, and since SciPy 1.11 it takes :class:`scipy.stats.CensoredData`,
which a patience fit needs (a user who was served before giving up tells us only that their
patience was longer than their wait).  Every family is fitted with its location fixed at 0
(durations start at 0), so exponential has one free parameter and the others two; AIC =
2k - 2 log L, the smallest wins.  The KS distance (``scipy.stats.kstest``) of the chosen fit
against the observed values says how well the family fits at all (for censored data it is
computed on the uncensored values, and is then only a rough guide).

The result is written in the scenario's own parametrisation (``sim/distributions.py``: mean and
standard deviation), so a calibrated file reads like a hand-written one.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: durations below this are clipped (a log-likelihood needs x > 0; clocks tick in microseconds)
MIN_DURATION_S = 1e-3
#: fewer observations than this: no fit (the scenario keeps the lab's default and says so)
MIN_SAMPLES = 20
#: censored data: at least this many uncensored values; below MIN_SAMPLES of them only the
#: one-parameter exponential is fitted (a handful of events cannot support a shape)
MIN_EVENTS = 5
FAMILIES: tuple[str, ...] = ("exponential", "lognormal", "gamma")


@dataclass(frozen=True)
class Candidate:
    """One family's maximum-likelihood fit."""

    family: str
    params: tuple[float, ...]  # scipy's (shape..., loc, scale)
    log_likelihood: float
    aic: float
    mean: float
    sd: float

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "aic": self.aic, "log_likelihood": self.log_likelihood, "mean": self.mean,
                "sd": self.sd}


@dataclass(frozen=True)
class DurationFit:
    """The chosen family (lowest AIC), every candidate, and how well the chosen one fits."""

    what: str
    n: int  # observations (uncensored + censored)
    n_censored: int
    chosen: Candidate
    candidates: tuple[Candidate, ...]
    ks: float  # Kolmogorov-Smirnov distance of the chosen fit to the uncensored values
    ks_p: float
    observed_mean: float  # of the uncensored values
    notes: tuple[str, ...] = field(default=())

    def distribution(self) -> dict[str, Any]:
        """The scenario's inline table (``{ dist = "lognormal", mean = ..., sd = ... }``)."""
        c = self.chosen
        if c.family == "exponential":
            return {"dist": "exponential", "mean": _round(c.mean)}
        return {"dist": c.family, "mean": _round(c.mean), "sd": _round(c.sd)}

    def summary(self) -> str:
        """One line for the scenario file's comment and the report."""
        others = ", ".join(f"{c.family} {c.aic - self.chosen.aic:+.1f}" for c in self.candidates if c is not self.chosen)
        cens = f" ({self.n_censored} right-censored)" if self.n_censored else ""
        rest = f"; AIC of the others: {others}" if others else ""
        notes = "".join(f"; {n}" for n in self.notes)
        return (f"{self.chosen.family} by AIC from {self.n} observations{cens}; KS distance {self.ks:.3f} "
                f"(p = {self.ks_p:.2g}){rest}{notes}")

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "n": self.n, "n_censored": self.n_censored, "family": self.chosen.family,
                "mean": self.chosen.mean, "sd": self.chosen.sd, "ks": self.ks, "ks_p": self.ks_p,
                "observed_mean": self.observed_mean, "candidates": [c.to_dict() for c in self.candidates]}


def _round(x: float) -> float:
    """Four significant digits: a file a person reads, and no false precision."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    return float(f"{x:.4g}")


def _scipy_family(name: str):  # noqa: ANN202
    from scipy import stats

    return {"exponential": stats.expon, "lognormal": stats.lognorm, "gamma": stats.gamma}[name]


def _candidate(name: str, values: np.ndarray, censored: np.ndarray) -> Candidate | None:
    from scipy import stats

    family = _scipy_family(name)
    data: Any = values if not censored.size else stats.CensoredData(uncensored=values, right=censored)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optimiser chatter for poor families; judged by AIC below
        try:
            params = family.fit(data, floc=0)
        except (ValueError, RuntimeError, FloatingPointError):
            return None
    frozen = family(*params)
    ll = float(np.sum(frozen.logpdf(values)) + (np.sum(frozen.logsf(censored)) if censored.size else 0.0))
    if not math.isfinite(ll):
        return None
    k = 1 if name == "exponential" else 2
    return Candidate(name, tuple(float(p) for p in params), ll, 2 * k - 2 * ll, float(frozen.mean()),
                     float(frozen.std()))


def fit_durations(what: str, values: Any, right_censored: Any = ()) -> DurationFit | None:
    """Fit ``values`` (and values known only to be *at least* ``right_censored``); None if too few."""
    from scipy import stats

    x = np.clip(np.asarray(values, dtype=float), MIN_DURATION_S, None)
    x = x[np.isfinite(x)]
    c = np.clip(np.asarray(right_censored, dtype=float), MIN_DURATION_S, None)
    c = c[np.isfinite(c)]
    if x.size + c.size < MIN_SAMPLES or x.size < (MIN_EVENTS if c.size else MIN_SAMPLES):
        return None
    families = FAMILIES if x.size >= MIN_SAMPLES else ("exponential",)
    found = [cand for name in families if (cand := _candidate(name, x, c)) is not None]
    if not found:
        return None
    best = min(found, key=lambda cand: cand.aic)
    test = stats.kstest(x, _scipy_family(best.family)(*best.params).cdf)
    notes: tuple[str, ...] = ()
    if c.size:
        notes = ("censored: the KS distance compares the uncensored values only",)
    if len(families) == 1:
        notes += (f"only {x.size} uncensored values: exponential only",)
    return DurationFit(what, int(x.size + c.size), int(c.size), best, tuple(found), float(test.statistic),
                       float(test.pvalue), float(np.mean(x)), notes)


@dataclass(frozen=True)
class CountFit:
    """An empirical distribution of a count (exchanges per chat)."""

    what: str
    values: tuple[int, ...]
    probabilities: tuple[float, ...]
    n: int

    @property
    def mean(self) -> float:
        return float(np.dot(self.values, self.probabilities))

    def distribution(self) -> dict[str, Any]:
        return {"dist": "discrete", "values": list(self.values), "weights": [_round(p) for p in self.probabilities]}

    def summary(self) -> str:
        return f"empirical from {self.n} chats (mean {self.mean:.2f})"

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "n": self.n, "values": list(self.values), "probabilities": list(self.probabilities),
                "mean": self.mean}


def fit_counts(what: str, counts: Any) -> CountFit | None:
    arr = np.asarray(counts, dtype=int)
    arr = arr[arr >= 1]
    if arr.size < MIN_SAMPLES:
        return None
    values, freq = np.unique(arr, return_counts=True)
    return CountFit(what, tuple(int(v) for v in values), tuple(float(f) / arr.size for f in freq), int(arr.size))
