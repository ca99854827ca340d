"""Replications on every core and on a Dask cluster give exactly the results of one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatlab.replications import Replication, ReplicationError, check_jobs, run_replications
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def chatlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chatlab.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _reps() -> list[Replication]:
    sc = load_scenario("baseline").with_overrides({"duration": 3600.0})
    return [Replication(sc, policy, seed, policy) for policy in ("legacy", "round_robin") for seed in (1, 2, 3)]


def test_two_processes_give_the_same_results_in_the_same_order() -> None:
    reps = _reps()
    one = run_replications(reps, jobs=1)
    done: list[int] = []
    two = run_replications(reps, jobs=2, on_done=lambda i, rep: done.append(i))
    assert sorted(done) == list(range(len(reps)))
    assert [r.label for r in two] == [r.label for r in one]
    assert [r.metrics for r in two] == [r.metrics for r in one]
    assert [r.metrics["run"]["seed"] for r in two] == [1, 2, 3, 1, 2, 3]


def test_a_dask_cluster_gives_the_same_results() -> None:
    from dask.distributed import LocalCluster

    reps = _reps()[:4]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster:
        got = run_replications(reps, dask=cluster.scheduler_address)
    assert [r.metrics for r in got] == [r.metrics for r in run_replications(reps, jobs=1)]


def test_compare_reports_are_identical_for_any_number_of_jobs(tmp_path: Path) -> None:
    for jobs in ("1", "2"):
        proc = chatlab("compare", "baseline", "--policies", "legacy,exclude_last", "--seeds", "1-2", "--duration",
                       "3600", "--jobs", jobs, "--no-progress", "--out", str(tmp_path / jobs))
        assert proc.returncode == 0, proc.stderr
    for name in ("summary.md", "metrics.json", "per_operator.csv"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name


@pytest.mark.parametrize("args, message", [
    (("compare", "baseline", "--jobs", "0"), "--jobs: expected a number of worker processes between 1 and 512"),
    (("sweep", "baseline", "--jobs", "-3"), "--jobs: expected"),
    (("gate", "baseline", "--dask", "tcp://127.0.0.1:9"), "--dask: cannot reach the scheduler"),
])
def test_bad_parallel_options_are_one_line(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    proc = chatlab(*args, "--no-progress", "--out", str(tmp_path / "out")) if args[0] != "gate" else \
        chatlab(*args, "--no-progress")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_check_jobs() -> None:
    assert check_jobs(None) >= 1 and check_jobs(3) == 3
    with pytest.raises(ReplicationError):
        check_jobs(0)


def test_run_over_several_seeds_is_one_column_with_intervals(tmp_path: Path) -> None:
    import json

    proc = chatlab("run", "baseline", "--seeds", "1-3", "--duration", "1800", "--jobs", "2", "--no-progress",
                   "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert meta["labels"] == ["exclude_last"] and meta["seeds"] == {"exclude_last": [1, 2, 3]}
    assert meta["ci95"]["exclude_last"]["counts"]["chats"] is not None
    assert sorted(p.name for p in (tmp_path / "r").iterdir() if p.is_dir()) == [
        "exclude_last-seed1", "exclude_last-seed2", "exclude_last-seed3"]
