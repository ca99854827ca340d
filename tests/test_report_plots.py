"""What the crowded figures draw, checked as data: the queue plot's time bins (means equal to
``step_mean`` over each bin, maxima to a naive scan) and the per-operator view (bars for a small
floor, a sorted curve for a large one), plus that the figures are produced at a readable size."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from chatlab import metrics as M
from chatlab.report.plot_data import MAX_BARS, bin_width, operator_view, queue_bins
from chatlab.report.plots import plot_lorenz, plot_operator_assignments, plot_queue_length
from sim.model import run_simulation
from sim.scenario import load_scenario

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5_000  # a real rendered figure
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def warm_run() -> M.Analysis:
    """A 30-minute baseline run with a 5-minute warm-up (the queue series starts at 300 s)."""
    scenario = load_scenario("baseline").with_overrides({"duration": 1800, "warmup": 300})
    return M.analyse(run_simulation(scenario, seed=4))


@pytest.mark.parametrize("span", [300, 600, 1800, 3600, 7200, 10000, 28800, 86400])
def test_bin_width_is_round_and_gives_50_to_100_bins(span: float) -> None:
    width = bin_width(span)
    assert width in (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600)
    assert 50 <= np.ceil(span / width) <= 100


def test_queue_bins_of_a_hand_built_step_function() -> None:
    queue = pd.DataFrame({"time": [0.0, 10.0, 25.0, 40.0], "queue_length": [0, 2, 1, 3]})
    bins = queue_bins(queue, 70.0, width=20.0)
    assert list(bins["start"]) == [0, 20, 40, 60] and list(bins["end"]) == [20, 40, 60, 70]  # last one shorter
    assert list(bins["mean"]) == pytest.approx([1.0, (5 * 2 + 15 * 1) / 20, 3.0, 3.0])
    assert list(bins["max"]) == [2, 2, 3, 3]  # the last bin: the value in effect since 40 s, no change inside
    assert queue_bins(queue.iloc[:0], 70.0).empty


def test_queue_bins_of_a_run_equal_step_mean_and_a_naive_maximum(warm_run: M.Analysis) -> None:
    q = warm_run.queue
    t, v = q["time"].to_numpy(dtype=float), q["queue_length"].to_numpy(dtype=float)
    duration = warm_run.metrics["run"]["duration_s"]
    bins = queue_bins(q, duration)
    assert bins["start"].iloc[0] == 300.0 and bins["end"].iloc[-1] == duration  # the warm-up is not drawn
    assert 50 <= len(bins) <= 100 and v.max() >= 2  # a run that does queue
    ends = np.append(t[1:], np.inf)
    for lo, hi, mean, top in bins[["start", "end", "mean", "max"]].itertuples(index=False):
        assert mean == pytest.approx(M.step_mean(t, v, lo, hi))
        assert top == max(val for a, b, val in zip(t, ends, v) if a < hi and b > lo)  # in effect for a while
    widths = bins["end"] - bins["start"]
    assert (bins["mean"] * widths).sum() / widths.sum() == pytest.approx(warm_run.metrics["health"]["queue_mean"])
    assert bins["max"].max() == warm_run.metrics["health"]["queue_max"]


def test_queue_plot_of_seven_runs_is_one_panel_each(warm_run: M.Analysis, tmp_path: Path) -> None:
    runs = [dataclasses.replace(warm_run, label=f"policy{i}") for i in range(7)]
    width, height = png_size(plot_queue_length(runs, tmp_path / "q7.png"))
    assert width == 1200 and height == 1160  # 4 rows of 2 panels
    assert png_size(plot_queue_length(runs[:1], tmp_path / "q1.png")) == (900, 450)


def _floor(label: str, counts: dict[int, int]) -> SimpleNamespace:
    """What the per-operator figures read of an analysed run: its label, table and scenario."""
    po = pd.DataFrame({"operator_id": list(counts), "assignments": list(counts.values())})
    return SimpleNamespace(label=label, per_operator=po, metrics={"run": {"scenario": "hand"}})


def test_a_small_floor_gets_one_bar_per_operator() -> None:
    view = operator_view([_floor("a", {2: 5, 1: 3}), _floor("b", {3: 4, 1: 1})])
    assert view.kind == "bars" and list(view.x) == [1, 2, 3]
    assert list(view.counts["a"]) == [3, 5, 0] and list(view.counts["b"]) == [1, 0, 4]  # absent: 0
    assert operator_view([_floor("a", {i: i for i in range(1, MAX_BARS + 1)})]).kind == "bars"


def test_a_large_floor_gets_a_sorted_curve_drawn_at_a_readable_width(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    runs = [_floor(name, {i: int(c) for i, c in enumerate(rng.poisson(3.0, 500), start=1)}) for name in "ab"]
    runs[1].per_operator = runs[1].per_operator.iloc[:400]  # 100 operators who never logged on in run b
    view = operator_view(runs)
    assert view.kind == "sorted" and list(view.x) == list(range(1, 501))
    for run in runs:
        curve = view.counts[run.label]
        assert np.all(np.diff(curve) <= 0)  # most assignments first
        expected = run.per_operator["assignments"].to_numpy()
        assert sorted(curve) == sorted([*expected, *[0] * (500 - len(expected))])
    assert operator_view([_floor("a", {i: 1 for i in range(MAX_BARS + 1)})]).kind == "sorted"
    assert png_size(plot_operator_assignments(runs, tmp_path / "ops.png")) == (900, 500)  # was 17,900 px wide
    assert png_size(plot_lorenz(runs, tmp_path / "lorenz.png"))[0] <= 700
