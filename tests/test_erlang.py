"""Erlang C in closed form (sim/erlang.py) and the mm_c scenario against it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.erlang import MMc, QueueingError, erlang_b, erlang_c, mmc_from_scenario


def _erlang_c_direct(c: int, a: float) -> float:
    """The textbook formula in log space (independent of the recursion)."""
    log_terms = [k * math.log(a) - math.lgamma(k + 1) for k in range(c)]
    log_top = c * math.log(a) - math.lgamma(c + 1) + math.log(c / (c - a))
    m = max(log_terms + [log_top])
    top = math.exp(log_top - m)
    return top / (sum(math.exp(t - m) for t in log_terms) + top)


def test_known_values() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_c(1, 0.7) == pytest.approx(0.7)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    q = MMc(lam=0.05, mu=1 / 60, c=4)
    assert q.p_wait == pytest.approx(0.5094, abs=1e-4) and q.mean_wait == pytest.approx(30.566, abs=1e-3)
    m1 = MMc(lam=0.5, mu=1.0, c=1)
    assert m1.mean_wait == pytest.approx(0.5 / (1 - 0.5))  # M/M/1: Wq = rho / (mu - lam)


@pytest.mark.parametrize("c, a", [(5, 3.7), (50, 45.0), (300, 290.0), (800, 790.5)])
def test_recursion_matches_the_formula_and_stays_finite_for_large_c(c: int, a: float) -> None:
    value = erlang_c(c, a)
    assert 0.0 < value < 1.0 and math.isfinite(value)
    assert value == pytest.approx(_erlang_c_direct(c, a), rel=1e-9)


def test_service_level_and_quantiles_are_consistent() -> None:
    q = MMc(lam=2.0, mu=0.25, c=10)
    assert q.service_level(0.0) == pytest.approx(1 - q.p_wait)
    for p in (0.5, 0.9, 0.99):
        t = q.wait_quantile(p)
        assert t == 0.0 or q.service_level(t) == pytest.approx(p)
    assert q.mean_wait_of_waiters * q.p_wait == pytest.approx(q.mean_wait)


@pytest.mark.parametrize("kwargs, match", [
    ({"lam": 1.0, "mu": 0.5, "c": 2}, "unstable"),
    ({"lam": 0.0, "mu": 1.0, "c": 2}, "arrival rate"),
    ({"lam": 1.0, "mu": -1.0, "c": 2}, "service rate"),
    ({"lam": 1.0, "mu": 1.0, "c": 0}, "servers"),
])
def test_bad_parameters_are_named(kwargs, match) -> None:
    with pytest.raises(QueueingError, match=match):
        MMc(**kwargs)


def test_mm_c_scenario_mean_wait_agrees_with_erlang_c() -> None:
    """Tolerance: the mean of 12 independent replications (150,000 simulated s each, ~7,500
    chats per replication, 90,000 in all) must be within 10 % of Wq AND within 3 standard
    errors of it; P(wait > 0) within 0.03.  At rho = 0.75 waits are strongly correlated, so
    a single replication's mean wait has a standard deviation of ~15 %, and the 12-run mean
    ~4.5 %: 10 % is about two standard errors of slack (the warm-up bias of starting empty
    is < 1 %).  Measured: 31.9 s vs Wq = 30.6 s (+4 %, 0.9 standard errors)."""
    from chatlab.metrics import wait_episodes
    from sim.model import run_simulation
    from sim.scenario import load_scenario

    scenario = load_scenario("mm_c").with_overrides({"duration": 150_000})
    theory = mmc_from_scenario(scenario)
    means, waited = [], []
    for seed in range(1, 13):
        waits = wait_episodes(run_simulation(scenario, "exclude_last", seed=seed))
        served = waits.loc[waits["outcome"] == "served", "wait_s"].to_numpy()
        assert len(served) > 6000
        means.append(served.mean())
        waited.append((served > 1e-9).mean())
    mean, se = float(np.mean(means)), float(np.std(means, ddof=1) / np.sqrt(len(means)))
    assert abs(mean - theory.mean_wait) / theory.mean_wait < 0.10, (mean, theory.mean_wait)
    assert abs(mean - theory.mean_wait) < 3 * se, (mean, se, theory.mean_wait)
    assert float(np.mean(waited)) == pytest.approx(theory.p_wait, abs=0.03)
