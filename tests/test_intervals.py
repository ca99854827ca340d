"""The lab's confidence intervals are honest, and paired differences are computed seed by seed.

Coverage: 200 intervals, each the Student-t 95 % interval (:func:`chatlab.metrics.ci_half_width`,
the one every report uses) of the mean wait over 5 replications of an M/M/4 floor at 50 %
load (10,000 s each, ~330 chats), must cover Erlang C's Wq in 90-99 % of cases.  If the
intervals are right the number covering is Binomial(200, 0.95), which falls outside
[180, 198] with probability 0.2 % (so a false failure is rare; the seeds are fixed, so the
outcome is reproducible).  Starting empty biases a 10,000 s run's mean wait by well under
1 % of Wq at this load, far inside the intervals' widths.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from chatlab.metrics import analyse, ci_half_width, pool
from chatlab.metrics.paired import paired_differences
from sim.erlang import mmc_from_scenario
from sim.model import run_simulation
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
INTERVALS, REPS = 200, 5


def _scenario():  # noqa: ANN202
    return load_scenario("mm_c").with_overrides({"duration": 10_000.0, "users.arrivals.rate": 1 / 30})


def _mean_wait(seed: int) -> float:
    from chatlab.metrics import wait_episodes

    waits = wait_episodes(run_simulation(_scenario(), "exclude_last", seed=seed))
    return float(waits.loc[waits["outcome"] == "served", "wait_s"].mean())


def test_the_95_percent_interval_of_the_mean_wait_covers_erlang_c_about_95_percent_of_the_time() -> None:
    theory = mmc_from_scenario(_scenario()).mean_wait
    with ProcessPoolExecutor(max_workers=2) as pool_:
        means = np.array(list(pool_.map(_mean_wait, range(1, INTERVALS * REPS + 1), chunksize=25)))
    covered = 0
    for k in range(INTERVALS):
        sample = means[k * REPS:(k + 1) * REPS]
        half = ci_half_width(sample)
        covered += abs(sample.mean() - theory) <= half
    low, high = stats.binom.ppf(0.001, INTERVALS, 0.95), stats.binom.isf(0.001, INTERVALS, 0.95)
    assert 180 <= covered <= 198, (covered, theory, means.mean())
    assert low <= 180 and high >= 198  # the band is at least as wide as the stated 0.2 % false-failure rate


def test_pooled_runs_carry_the_student_t_half_width_of_every_metric() -> None:
    sc = _scenario()
    runs = [analyse(run_simulation(sc, "exclude_last", seed=s), label="x") for s in (1, 2, 3, 4)]
    pooled = pool("x", runs)
    values = [r.metrics["wait"]["mean_s"] for r in runs]
    expected = stats.t.ppf(0.975, 3) * np.std(values, ddof=1) / np.sqrt(4)
    assert pooled.interval["wait"]["mean_s"] == pytest.approx(expected)
    assert pooled.interval["run"]["policy"] is None  # not a number: no interval


def test_paired_differences_are_per_seed_and_flag_only_intervals_that_exclude_zero() -> None:
    sc = load_scenario("baseline").with_overrides({"duration": 3600.0})
    runs = [analyse(run_simulation(sc, p, seed=s), label=p) for p in ("legacy", "exclude_last") for s in (1, 2, 3)]
    [repeat, mean_wait] = paired_differences(runs, "exclude_last", ["assignment.repeat_rate", "wait.mean_s"])
    per_seed = [a.metrics["assignment"]["repeat_rate"] - b.metrics["assignment"]["repeat_rate"]
                for a, b in zip(runs[:3], runs[3:])]
    assert repeat["policy"] == "legacy" and repeat["n"] == 3
    assert repeat["difference"] == pytest.approx(np.mean(per_seed))
    assert repeat["ci95_half_width"] == pytest.approx(ci_half_width(per_seed))
    assert repeat["significant"] is True  # legacy repeats, the fix never does
    assert mean_wait["significant"] == (abs(mean_wait["difference"]) > mean_wait["ci95_half_width"])


def chatlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chatlab.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_compare_baseline_writes_the_paired_section_and_rebuilds_it(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    proc = chatlab("compare", "baseline", "--policies", "legacy,exclude_last", "--seeds", "1-3", "--duration", "3600",
                   "--baseline", "exclude_last", "--no-progress", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "minus exclude_last" in proc.stdout and " *" in proc.stdout
    md = (out / "summary.md").read_text()
    assert "## Paired differences vs exclude_last" in md and "mean ± 95 % CI over seeds 1, 2, 3" in md
    again = chatlab("report", str(out), "--out", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    for name in ("summary.md", "summary.html", "paired.json", "metrics.json"):
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name
    for args, message in ((("--baseline", "random"), "--baseline: 'random' is not one of --policies"),
                          (("--baseline", "legacy", "--seeds", "1"), "--baseline: needs at least 2 seeds")):
        proc = chatlab("compare", "baseline", "--policies", "legacy,exclude_last", *args, "--no-progress",
                       "--out", str(tmp_path / "bad"))
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "bad").exists()


def test_precision_adds_seeds_until_the_intervals_are_narrow_or_max_seeds(tmp_path: Path) -> None:
    from chatlab.replications.precision import widest

    proc = chatlab("compare", "mm_c", "--policies", "exclude_last,round_robin", "--duration", "10000",
                   "--precision", "0.2", "--jobs", "2", "--no-progress", "--out", str(tmp_path / "loose"))
    assert proc.returncode == 0, proc.stderr
    assert "precision ±20 % reached with" in proc.stdout
    meta = json.loads((tmp_path / "loose" / "metrics.json").read_text())
    n = len(meta["seeds"]["round_robin"])
    assert 3 < n < 50 and meta["seeds"]["exclude_last"] == meta["seeds"]["round_robin"] == list(range(1, n + 1))
    for label in ("exclude_last", "round_robin"):
        assert meta["ci95"][label]["wait"]["mean_s"] <= 0.2 * meta["runs"][label]["wait"]["mean_s"]
    proc = chatlab("compare", "baseline", "--policies", "legacy,exclude_last", "--duration", "3600",
                   "--precision", "0.001", "--max-seeds", "4", "--jobs", "2", "--no-progress",
                   "--out", str(tmp_path / "tight"))
    assert proc.returncode == 0, proc.stderr
    assert "precision ±0.1 % NOT reached with 4 seeds" in proc.stdout
    assert widest([]) is None
    for args, message in ((("--precision", "2"), "--precision: expected a fraction"),
                          (("--precision", "0.1", "--seeds", "1"), "--precision: start from at least 2 seeds"),
                          (("--max-seeds", "1"), "--max-seeds: expected 2..10000")):
        proc = chatlab("compare", "baseline", *args, "--no-progress", "--out", str(tmp_path / "bad"))
        assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
