"""The load test's pure pieces: arrivals, the scaled clock, the config file, pool sizing.

No Locust and no database here (those are in ``test_loadtest.py``); these run in
milliseconds and pin down the arithmetic the Locust process relies on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from loadtest.arrivals import BadArrivalRate, arrival_times, peak_rate
from loadtest.clock import ScaledClock
from loadtest.config import CONFIG_ENV, BadLoadTestConfig, LoadTestConfig, SeededOperator
from loadtest.plan import POOL_CAP, concurrent_conversations, pool_limit
from sim.statemachine import ChatLabError


# ----------------------------------------------------------------------------- arrivals
def test_constant_rate_arrivals_have_the_poisson_count_and_stay_in_window() -> None:
    rate, duration = 0.5, 4000.0
    times = arrival_times(lambda t: rate, duration, np.random.default_rng(1))
    expected = rate * duration
    # Poisson: sd = sqrt(2000) ~ 45; 5 sd is a bound that only a broken generator breaks
    assert abs(len(times) - expected) < 5 * math.sqrt(expected)
    assert all(0 <= a < b < duration for a, b in zip(times, times[1:]))


def test_rate_curve_is_followed() -> None:
    """A step curve: 4x the rate in the second half gives ~4x the arrivals there."""
    duration = 2000.0
    times = np.array(arrival_times(lambda t: 0.2 if t < 1000 else 0.8, duration, np.random.default_rng(2)))
    first, second = int((times < 1000).sum()), int((times >= 1000).sum())
    assert abs(first - 200) < 5 * math.sqrt(200)
    assert abs(second - 800) < 5 * math.sqrt(800)


def test_share_thins_the_stream_for_distributed_workers() -> None:
    full = arrival_times(lambda t: 1.0, 2000.0, np.random.default_rng(3))
    half = arrival_times(lambda t: 1.0, 2000.0, np.random.default_rng(3), share=0.5)
    assert abs(len(half) - len(full) / 2) < 5 * math.sqrt(len(full) / 2)


def test_same_seed_same_arrivals_and_zero_rate_none() -> None:
    a = arrival_times(lambda t: 0.1, 500.0, np.random.default_rng(7))
    b = arrival_times(lambda t: 0.1, 500.0, np.random.default_rng(7))
    assert a == b and a
    assert arrival_times(lambda t: 0.0, 500.0, np.random.default_rng(7)) == []
    assert arrival_times(lambda t: 1.0, 0.0, np.random.default_rng(7)) == []


def test_bad_rate_is_a_user_error() -> None:
    with pytest.raises(BadArrivalRate):
        peak_rate(lambda t: -1.0, 10.0)
    with pytest.raises(ChatLabError):
        arrival_times(lambda t: float("nan"), 10.0, np.random.default_rng(0))


# ----------------------------------------------------------------------------- clock
def test_scaled_clock_converts_both_ways() -> None:
    clock = ScaledClock(60.0)
    assert clock.wall(3600.0) == pytest.approx(60.0)
    assert clock.scenario(1.0) == pytest.approx(60.0)
    clock.start -= 2.0  # pretend two wall seconds passed
    assert clock.now() == pytest.approx(120.0, abs=1.0)
    with pytest.raises(ValueError):
        ScaledClock(0.0)


# ----------------------------------------------------------------------------- config
def _config(**over: object) -> LoadTestConfig:
    base = dict(dsn="postgresql:///x", schema="lt_1", scenario="baseline", policy="legacy",
                time_scale=60.0, seed=3, run_time_wall_s=30.0,
                operators=(SeededOperator(1, "op-1", 2, ((0.0, 600.0),)), SeededOperator(2, "op-2")))
    base.update(over)
    return LoadTestConfig(**base)  # type: ignore[arg-type]


def test_config_round_trips_through_its_file(tmp_path, monkeypatch) -> None:
    config = _config(policy_params={"fallback_after": 120.0})
    path = config.write(tmp_path / "lt.json")
    monkeypatch.setenv(CONFIG_ENV, str(path))
    again = LoadTestConfig.from_env()
    assert again == config
    assert again.duration == pytest.approx(1800.0)  # 30 wall s at K = 60


def test_config_errors_are_one_line_user_errors(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    with pytest.raises(BadLoadTestConfig, match=CONFIG_ENV):
        LoadTestConfig.from_env()
    with pytest.raises(BadLoadTestConfig, match="cannot read"):
        LoadTestConfig.read(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"dsn": "x", "operators": [], "surprise": 1}')
    with pytest.raises(BadLoadTestConfig, match="invalid"):
        LoadTestConfig.read(bad)


# ----------------------------------------------------------------------------- sizing
@dataclass(frozen=True)
class _Const:
    value: float

    @property
    def mean(self) -> float:
        return self.value

    def sample(self, rng: np.random.Generator) -> float:
        return self.value


@dataclass(frozen=True)
class _Flows:
    rate: float
    conversation: float

    def rate_at(self, t: float) -> float:
        return self.rate

    def conversation_estimate(self) -> float:
        return self.conversation


def test_pool_follows_littles_law_and_is_capped() -> None:
    assert concurrent_conversations(0.1, 300.0) == pytest.approx(30.0)
    small = pool_limit(_Flows(0.01, 100.0), 3600.0)  # 1 conversation in progress
    bigger = pool_limit(_Flows(0.05, 100.0), 3600.0)  # 5
    assert 2 <= small < bigger
    assert pool_limit(_Flows(10.0, 1000.0), 3600.0) == POOL_CAP
    # two workers each need about half
    assert pool_limit(_Flows(0.2, 100.0), 3600.0, workers=2) < pool_limit(_Flows(0.2, 100.0), 3600.0)
