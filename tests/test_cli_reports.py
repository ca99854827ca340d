"""End to end through the real CLI (subprocess): run, compare, sweep, report; user mistakes exit 2.

Short simulated windows (``--duration``) keep this file to a few seconds of simulation.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from chatlab import metrics as M
from chatlab.report import PLOT_FILES, RUN_REPORT_FILES

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SHORT = ["--duration", "1800", "--no-progress"]


def chatlab(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatlab.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def assert_pngs(out: Path) -> None:
    for name in PLOT_FILES.values():
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, name


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "legacy"
    res = chatlab("run", "baseline", "--policy", "legacy", "--seed", "2", "--out", str(out), *SHORT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "repeat rate" in res.stdout and str(out) in res.stdout
    return out


def test_run_writes_a_complete_report(run_dir: Path) -> None:
    for name in RUN_REPORT_FILES:
        assert (run_dir / name).is_file() and (run_dir / name).stat().st_size > 0, name
    assert_pngs(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(M.flatten_metrics(metrics)) == M.documented_keys()
    info = metrics["run"]
    assert (info["scenario"], info["policy"], info["seed"], info["source"]) == ("baseline", "legacy", 2, "sim")
    assert info["duration_s"] == 1800.0
    assert metrics["assignment"]["repeat"] > 0 and metrics["assignment"]["premature"] > 0  # the seed's bug
    log = pd.read_parquet(run_dir / "events.parquet")
    assert len(log) == metrics["run"]["events"] == len(pd.read_csv(run_dir / "events.csv"))


def test_run_is_reproducible_from_its_seed(run_dir: Path, tmp_path: Path) -> None:
    res = chatlab("run", "baseline", "--policy", "legacy", "--seed", "2", "--out", str(tmp_path / "again"), *SHORT)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "again" / "events.csv").read_text() == (run_dir / "events.csv").read_text()
    assert json.loads((tmp_path / "again" / "metrics.json").read_text()) == json.loads((run_dir / "metrics.json").read_text())


def test_report_rebuilds_a_run_from_its_log(run_dir: Path, tmp_path: Path) -> None:
    res = chatlab("report", str(run_dir / "events.csv"), "--out", str(tmp_path / "re"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads((tmp_path / "re" / "metrics.json").read_text()) == json.loads((run_dir / "metrics.json").read_text())
    assert_pngs(tmp_path / "re")


def test_compare_with_seeds_prints_side_by_side_and_writes_report(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    res = chatlab("compare", "baseline", "--policies", "legacy,exclude_last", "--seeds", "1-2", "--out", str(out), *SHORT)
    assert res.returncode == 0, res.stdout + res.stderr
    header = res.stdout.splitlines()[0].split()
    assert header == ["metric", "legacy", "exclude_last"]
    repeat_line = next(ln for ln in res.stdout.splitlines() if ln.startswith("repeat rate"))
    assert repeat_line.split()[-3:] == ["0.0%", "±", "0.0%"]  # exclude_last: no repeat in any seed
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["kind"] == "comparison" and meta["seeds"] == {"legacy": [1, 2], "exclude_last": [1, 2]}
    assert meta["runs"]["legacy"]["assignment"]["repeat_rate"] > 0
    assert meta["runs"]["exclude_last"]["assignment"]["repeat_rate"] == 0.0
    for name in ("summary.md", "summary.html", "metrics.csv", "per_operator.csv"):
        assert (out / name).stat().st_size > 0
    assert_pngs(out)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "exclude_last-seed1", "exclude_last-seed2", "legacy-seed1", "legacy-seed2"]
    rebuilt = chatlab("report", str(out), "--out", str(tmp_path / "re"))
    assert rebuilt.returncode == 0, rebuilt.stderr
    again = json.loads((tmp_path / "re" / "metrics.json").read_text())
    assert again["runs"] == meta["runs"] and again["labels"] == meta["labels"]


def test_sweep_grid_table_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    res = chatlab("sweep", "baseline", "--set", "operators.count=2,4", "--policies", "legacy,exclude_last",
                  "--seeds", "1", "--duration", "900", "--out", str(out), "--no-progress")
    assert res.returncode == 0, res.stdout + res.stderr
    table = pd.read_csv(out / "sweep.csv")
    assert len(table) == 4 and set(table["operators.count"]) == {2, 4}
    assert (table.loc[table["policy"] == "exclude_last", "assignment.repeat_rate"] == 0).all()
    assert (out / "sweep.png").read_bytes().startswith(PNG_MAGIC)
    assert (out / "sweep_summary.csv").stat().st_size > 0 and "operators.count" in res.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "no_such_scenario_xyz"], "no_such_scenario_xyz"),
        (["run", "baseline", "--policy", "fifo"], "unknown policy 'fifo'"),
        (["compare", "baseline", "--policies", "legacy,nope"], "unknown policy 'nope'"),
        (["compare", "baseline", "--seeds", "5-1"], "--seeds"),
        (["compare", "baseline", "--seed", "1", "--seeds", "1-2"], "either --seed or --seeds"),
        (["run", "baseline", "--duration", "-5"], "--duration: expected seconds > 0"),
        (["sweep", "baseline", "--set", "operators.bogus=1,2"], "bogus"),
        (["sweep", "baseline", "--set", "operators.count"], "FIELD=VALUE"),
        (["report", "/nonexistent/dir"], "no such file or directory"),
    ],
)
def test_user_mistakes_exit_2_with_one_line_and_write_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    res = chatlab(*args, "--out", str(out))
    assert res.returncode == 2, res.stdout + res.stderr
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"chatlab {args[0]}: error:") and message in err[0], res.stderr
    assert "Traceback" not in res.stderr and not out.exists()
