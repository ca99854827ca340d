"""The calibration's statistics on data whose truth is known: families, censoring, counts, arrival curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from chatlab.calibration.arrivals import DAY, HOUR, fit_arrivals
from chatlab.calibration.fits import fit_counts, fit_durations
from sim.distributions import Gamma, LogNormal, parse_distribution


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("truth", [LogNormal(20.0, 30.0), Gamma(40.0, 20.0)], ids=["lognormal", "gamma"])
def test_a_clear_family_is_chosen_and_its_mean_and_sd_come_back(truth, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.array([truth.sample(rng) for _ in range(2000)])
    fit = fit_durations("x", x)
    assert fit is not None and fit.chosen.family == truth.kind
    assert fit.chosen.mean == pytest.approx(truth.mean_, rel=0.1)
    assert fit.chosen.sd == pytest.approx(truth.sd, rel=0.2)
    assert fit.ks < 0.05 and len(fit.candidates) == 3
    assert all(c.aic >= fit.chosen.aic for c in fit.candidates)
    # what the scenario file gets parses back into the same family and mean
    back = parse_distribution(fit.distribution(), "x")
    assert back.kind == truth.kind and back.mean == pytest.approx(fit.chosen.mean, rel=1e-3)


def test_a_bad_family_shows_in_the_ks_distance() -> None:
    x = np.concatenate([np.full(500, 5.0), np.full(500, 500.0)]) + np.random.default_rng(1).uniform(0, 1, 1000)
    fit = fit_durations("bimodal", x)
    assert fit is not None and fit.ks > 0.2


def test_patience_is_fitted_with_served_waits_as_right_censored() -> None:
    rng = np.random.default_rng(5)
    patience = rng.exponential(600.0, 5000)
    wait = rng.exponential(200.0, 5000)
    gave_up = patience < wait
    fit = fit_durations("patience", patience[gave_up], wait[~gave_up])
    assert fit is not None and fit.n_censored == int((~gave_up).sum())
    assert fit.chosen.mean == pytest.approx(600.0, rel=0.1)
    # ignoring the censoring would be badly wrong: the users who gave up are the impatient ones
    assert patience[gave_up].mean() < 300


def test_too_few_observations_give_no_fit_and_few_events_only_the_exponential() -> None:
    assert fit_durations("x", [1.0] * 10) is None
    few = fit_durations("patience", [100.0, 200.0, 300.0, 400.0, 500.0, 600.0], [50.0] * 100)
    assert few is not None and [c.family for c in few.candidates] == ["exponential"]
    assert fit_durations("patience", [100.0, 200.0], [50.0] * 100) is None


def test_counts_are_an_empirical_distribution_that_samples_like_the_data() -> None:
    data = [1] * 30 + [2] * 50 + [5] * 20
    fit = fit_counts("exchanges", data)
    assert fit is not None and fit.values == (1, 2, 5) and fit.probabilities == pytest.approx((0.3, 0.5, 0.2))
    dist = parse_distribution(fit.distribution(), "users.exchanges")
    rng = np.random.default_rng(1)
    draws = np.array([dist.sample(rng) for _ in range(4000)])
    assert set(np.unique(draws)) == {1.0, 2.0, 5.0}
    assert draws.mean() == pytest.approx(fit.mean, rel=0.05)


def _poisson(rate_of, horizon: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = max(rate_of(t) for t in np.arange(0, horizon, 60.0))
    t, out = 0.0, []
    while True:
        t += rng.exponential(1 / top)
        if t >= horizon:
            return np.array(out)
        if rng.random() < rate_of(t) / top:
            out.append(t)


def test_a_constant_rate_is_written_as_poisson_with_its_mean() -> None:
    times = _poisson(lambda t: 0.1, 4 * HOUR, 3)
    fit = fit_arrivals(times, 4 * HOUR, pd.Timestamp("2026-03-02T08:00:00Z"))
    assert fit.shape == "period" and fit.constant and fit.table()["kind"] == "poisson"
    assert fit.table()["rate"] == pytest.approx(0.1, rel=0.1)


def test_a_daily_profile_over_several_days_becomes_a_curve_by_hour_of_day() -> None:
    def rate(t: float) -> float:  # busy 09-17 UTC, quiet otherwise
        return 0.2 if 9 * HOUR <= t % DAY < 17 * HOUR else 0.02

    origin = pd.Timestamp("2026-03-02T00:00:00Z")
    times = _poisson(rate, 5 * DAY, 4)
    fit = fit_arrivals(times, 5 * DAY, origin)
    assert fit.shape == "day" and not fit.constant and fit.duration == DAY
    assert fit.hourly[12] == pytest.approx(0.2, rel=0.15) and fit.hourly[3] == pytest.approx(0.02, rel=0.5)
    table = fit.table()
    assert table["kind"] == "curve" and table["points"][-1][0] == DAY
    # an origin at 06:00 shifts the period onto the same hours of the day
    shifted = fit_arrivals(times[times >= 6 * HOUR] - 6 * HOUR, 5 * DAY - 6 * HOUR, origin + pd.Timedelta(hours=6))
    assert shifted.hourly[12] == pytest.approx(fit.hourly[12], rel=0.1)


def test_groups_are_found_by_capacity_and_speed_and_shifts_from_activity() -> None:
    """mixed_floor: seniors (3 chats, twice as fast), juniors (2 chats, 0.8x) and part-timers (2 chats,
    on shift 1 h - 3 h only).  Juniors and part-timers differ in speed by 1.25x only (< 1.5): one group."""
    from chatlab.calibration.floor import fit_groups
    from chatlab.calibration.samples import collect
    from sim.model import run_simulation
    from sim.scenario import load_scenario

    scenario = load_scenario("mixed_floor")
    log = run_simulation(scenario, seed=1)
    samples = collect(log)
    groups = fit_groups(samples, sorted(samples.activity), log.attrs["operator_max_chats"],
                        period_s=scenario.duration, offline_gap=1800.0)
    by_cap = {g.max_chats: g for g in groups}
    assert sorted(by_cap) == [2, 3] and len(groups) == 2
    seniors, rest = by_cap[3], by_cap[2]
    assert seniors.operators == (1, 2, 3) and rest.operators == tuple(range(4, 10))
    assert seniors.median_handle_s < rest.median_handle_s / 1.5
    # the part-timers (operators 8 and 9, indexes 4 and 5 of their group) get their 1 h - 3 h shift
    shifted = {i for i, _, _ in rest.shifts}
    assert shifted == {4, 5}
    for _, start, end in rest.shifts:
        assert 3600 <= start <= 3600 + 600 and 10800 - 1200 <= end <= 10800
    assert not seniors.shifts


def test_two_weeks_or_more_become_a_curve_by_hour_of_week() -> None:
    def rate(t: float) -> float:  # weekdays busy, weekends quiet (2026-03-02 is a Monday)
        return 0.02 if (t // DAY) % 7 >= 5 else 0.1

    origin = pd.Timestamp("2026-03-02T00:00:00Z")
    times = _poisson(rate, 14 * DAY, 6)
    fit = fit_arrivals(times, 14 * DAY, origin)
    assert fit.shape == "week" and fit.duration == 7 * DAY and len(fit.hourly) == 168
    weekday, weekend = np.mean(fit.hourly[:120]), np.mean(fit.hourly[120:])
    assert weekday == pytest.approx(0.1, rel=0.1) and weekend == pytest.approx(0.02, rel=0.25)


def test_an_origin_off_the_hour_does_not_make_a_constant_rate_look_like_a_curve() -> None:
    origin = pd.Timestamp("2026-03-02T08:30:00Z")
    rejected = 0
    for seed in range(10):
        times = _poisson(lambda t: 0.05, 1.5 * DAY, 100 + seed)
        fit = fit_arrivals(times, 1.5 * DAY, origin)
        assert fit.shape == "day" and fit.offset == 8.5 * HOUR
        rejected += not fit.constant
    assert rejected <= 2  # a 5 % test: about one in twenty by chance


def test_shifts_fold_onto_the_typical_day() -> None:
    from chatlab.calibration.floor import fold

    assert fold(1 * HOUR, 51 * HOUR, DAY, 0.0) == [(0.0, DAY)]  # online for two days
    assert fold(20 * HOUR, 28 * HOUR, DAY, 0.0) == [(20 * HOUR, DAY), (0.0, 4 * HOUR)]  # a night shift
    assert fold(0.0, 2 * HOUR, DAY, 9 * HOUR) == [(9 * HOUR, 11 * HOUR)]  # the period began at 09:00
