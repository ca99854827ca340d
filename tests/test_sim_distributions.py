"""Distributions of scenario files (sim/distributions.py): parameters by mean/sd, errors by field."""

from __future__ import annotations

import numpy as np
import pytest

from sim.errors import DistributionError
from sim.distributions import ClippedNormal, Constant, Exponential, Gamma, LogNormal, Uniform, count_from, parse_distribution

SPECS = [
    {"dist": "constant", "value": 7},
    {"dist": "exponential", "mean": 60},
    {"dist": "uniform", "low": 1, "high": 5},
    {"dist": "lognormal", "mean": 90, "sd": 60},
    {"dist": "gamma", "mean": 40, "sd": 20},
    {"dist": "normal", "mean": 10, "sd": 8},
]


@pytest.mark.parametrize("spec", SPECS, ids=[s["dist"] for s in SPECS])
def test_sample_mean_matches_the_declared_mean_and_round_trips(spec) -> None:
    dist = parse_distribution(spec, "x")
    rng = np.random.default_rng(12345)
    sample = np.array([dist.sample(rng) for _ in range(40_000)])
    assert (sample >= 0).all()
    assert sample.mean() == pytest.approx(dist.mean, rel=0.03)  # ~10 standard errors for these cvs
    if "sd" in spec and spec["dist"] != "normal":
        assert sample.std() == pytest.approx(spec["sd"], rel=0.08)
    assert parse_distribution(dist.to_dict()) == dist


def test_bare_numbers_are_constants_and_types_are_right() -> None:
    assert parse_distribution(3) == Constant(3.0)
    assert isinstance(parse_distribution({"dist": "exponential", "mean": 1}), Exponential)
    assert isinstance(parse_distribution({"dist": "uniform", "low": 1, "high": 1}), Uniform)
    assert isinstance(parse_distribution({"dist": "lognormal", "mean": 1, "sd": 1}), LogNormal)
    assert isinstance(parse_distribution({"dist": "gamma", "mean": 1, "sd": 1}), Gamma)
    assert ClippedNormal(-1.0, 1.0).mean == pytest.approx(0.0833, abs=1e-3)  # E[max(X, 0)], X ~ N(-1, 1)
    assert [count_from(v) for v in (0.2, 1.5, 2.5, 3.49)] == [1, 2, 2, 3]


@pytest.mark.parametrize("spec, field, expected", [
    ("slow", "h", "a number or a table"),
    ({"mean": 3}, "h.dist", "the key is missing"),
    ({"dist": "pareto"}, "h.dist", "one of constant"),
    ({"dist": "exponential"}, "h.mean", "required for dist = 'exponential'"),
    ({"dist": "exponential", "mean": -1}, "h.mean", "a finite number >= 0"),
    ({"dist": "exponential", "mean": True}, "h.mean", "a number"),
    ({"dist": "exponential", "mean": 1, "sd": 2}, "h.sd", "allowed keys: dist, mean"),
    ({"dist": "uniform", "low": 5, "high": 1}, "h.high", "high >= low"),
    ({"dist": "lognormal", "mean": 5, "sd": 0}, "h.sd", "sd > 0"),
    ({"dist": "gamma", "mean": 0, "sd": 1}, "h.mean", "mean > 0"),
])
def test_errors_name_the_dotted_field_and_the_expectation(spec, field, expected) -> None:
    with pytest.raises(DistributionError) as info:
        parse_distribution(spec, "h")
    assert info.value.field == field and expected in str(info.value)
