"""Paired differences: each policy minus a baseline policy, seed by seed, with a confidence interval.

Why paired: every policy of a comparison runs on the same seeds, and a seed fixes the users
(arrivals, exchanges, patience, think times: ``sim/population.py``), so policy A's and policy
B's runs on seed s share their random numbers.  The difference d_s = m(A, s) - m(B, s) removes
most of the run-to-run noise, and its mean's Student-t interval (:func:`ci_half_width`) is far
narrower than the two means' intervals side by side.  A difference is *significant* when its
95 % interval excludes 0.  Seeds where either side has no value (no served wait, say) are
left out of that metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from chatlab.metrics.analysis import Analysis
from chatlab.metrics.pooling import ci_half_width
from chatlab.metrics.runlog import _num
from chatlab.metrics.schema import get_metric


def _value(metrics: dict[str, Any], key: str) -> float | None:
    try:
        value = get_metric(metrics, key)
    except KeyError:
        return None
    return None if isinstance(value, bool) else _num(value)


def paired_differences(runs: Sequence[Analysis], baseline: str, keys: Sequence[str]) -> list[dict[str, Any]]:
    """One row per (policy other than ``baseline``, metric key): mean difference, its 95 % half-width,
    the seeds used and whether the interval excludes 0."""
    by_label: dict[str, dict[Any, dict[str, Any]]] = {}
    for run in runs:
        by_label.setdefault(run.label, {})[run.metrics["run"]["seed"]] = run.metrics
    base = by_label[baseline]
    rows = []
    for label, seeds in by_label.items():
        if label == baseline:
            continue
        common = [s for s in seeds if s in base]
        for key in keys:
            pairs = [(_value(seeds[s], key), _value(base[s], key)) for s in common]
            d = np.array([a - b for a, b in pairs if a is not None and b is not None], dtype=float)
            mean = float(d.mean()) if d.size else None
            half = ci_half_width(d) if d.size >= 2 else None
            rows.append({"policy": label, "baseline": baseline, "key": key, "n": int(d.size), "difference": mean,
                         "ci95_half_width": half,
                         "significant": None if half is None or mean is None else bool(abs(mean) > half)})
    return rows
