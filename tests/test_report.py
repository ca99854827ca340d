"""Report directories: every file is there, metrics.json has the documented keys, logs round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from chatlab import metrics as M
from chatlab.report import (
    PLOT_FILES,
    RUN_REPORT_FILES,
    ReportError,
    find_logs,
    load_runs,
    markdown_table,
    summary_table,
    text_table,
    write_comparison_report,
    write_run_report,
)
from test_metrics import LogBuilder, served_chats

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def legacy_like() -> pd.DataFrame:
    """Operator 1 keeps getting the chat it just answered (the seed's bug), operator 2 idles."""
    b = LogBuilder()
    for chat in range(1, 4):
        s = chat * 100.0
        b.new(s, chat).assign(s + 5, chat, 1).reply(s + 10, chat, 1).assign(s + 11, chat, 1).reply(s + 20, chat, 1)
        b.end(s + 30, chat)
    return b.log(duration=600.0, scenario="hand", policy="legacy", seed=7, source="sim", operators=[1, 2])


def fixed_like() -> pd.DataFrame:
    return served_chats({1: 2, 2: 2}, gap=100.0).log(duration=600.0, scenario="hand", policy="exclude_last", seed=7,
                                                      source="sim", operators=[1, 2])


def test_run_report_has_every_file_and_documented_metrics(tmp_path: Path) -> None:
    run = M.analyse(legacy_like())
    out = write_run_report(run, tmp_path / "r")
    for name in RUN_REPORT_FILES:
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0, name
    for name in PLOT_FILES.values():
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, name  # a real rendered figure
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(M.flatten_metrics(metrics)) == M.documented_keys()
    assert metrics["assignment"]["repeat"] == 3 and metrics["run"]["policy"] == "legacy"
    csv = pd.read_csv(out / "metrics.csv")
    assert len(csv) == 1 and csv.loc[0, "assignment.repeat"] == 3
    po = pd.read_csv(out / "per_operator.csv")
    assert list(po["operator_id"]) == [1, 2] and list(po["assignments"]) == [6, 0]
    md = (out / "summary.md").read_text()
    assert "| repeat assignments | 3 |" in md and "![lorenz](lorenz.png)" in md
    html = (out / "summary.html").read_text()
    assert '<img src="wait_cdf.png"' in html and "<table" in html


@pytest.mark.parametrize("name", ["events.parquet", "events.csv"])
def test_saved_log_rebuilds_the_same_metrics(tmp_path: Path, name: str) -> None:
    original = M.analyse(legacy_like())
    write_run_report(original, tmp_path / "r", plots=False)
    (rebuilt,) = load_runs(tmp_path / "r" / name)
    assert rebuilt.label == original.label
    assert rebuilt.metrics == original.metrics  # attrs survive CSV via run.json
    pd.testing.assert_frame_equal(rebuilt.log, original.log, check_categorical=False)


def test_comparison_report_layout_and_reload(tmp_path: Path) -> None:
    runs = [M.analyse(legacy_like()), M.analyse(fixed_like())]
    out = write_comparison_report(runs, tmp_path / "c")
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["kind"] == "comparison" and meta["labels"] == ["legacy", "exclude_last"]
    assert meta["runs"]["legacy"]["assignment"]["repeat_rate"] == pytest.approx(0.5)
    assert meta["runs"]["exclude_last"]["assignment"]["repeat_rate"] == 0.0
    for label in ("legacy", "exclude_last"):
        assert (out / label / "events.parquet").is_file() and (out / label / "metrics.json").is_file()
    for name in PLOT_FILES.values():
        assert (out / name).read_bytes().startswith(PNG_MAGIC)
    po = pd.read_csv(out / "per_operator.csv")
    assert set(po["label"]) == {"legacy", "exclude_last"}
    assert list(pd.read_csv(out / "metrics.csv")["label"]) == ["legacy", "exclude_last"]
    reloaded = load_runs(out)
    assert [r.label for r in reloaded] == ["legacy", "exclude_last"]
    assert reloaded[1].metrics == runs[1].metrics


def test_duplicate_labels_are_refused(tmp_path: Path) -> None:
    run = M.analyse(fixed_like())
    with pytest.raises(ReportError, match="unique"):
        write_comparison_report([run, run], tmp_path / "c")


def test_missing_or_empty_sources_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no such file"):
        find_logs(tmp_path / "nope")
    with pytest.raises(ReportError, match="no events.parquet"):
        find_logs(tmp_path)
    bad = tmp_path / "events.csv"
    bad.write_text("time,foo\n1,2\n")
    with pytest.raises(M.InvalidEventLog, match="missing columns"):
        load_runs(bad)


def test_tables() -> None:
    runs = [M.analyse(legacy_like()), M.analyse(fixed_like())]
    table = summary_table(runs)
    assert list(table.columns) == ["legacy", "exclude_last"]
    assert table.loc["repeat rate", "legacy"] == "50.0%" and table.loc["repeat rate", "exclude_last"] == "0.0%"
    assert table.loc["max/min (assignments)", "legacy"] == "-"  # operator 2 got nothing: unbounded
    lines = text_table(table).splitlines()
    assert len({len(line) for line in lines[:3]}) == 1  # aligned columns
    md = markdown_table(table).splitlines()
    assert md[0].startswith("| metric | legacy | exclude_last |") and md[1] == "|---|---|---|"


# ----------------------------------------------------------------- several seeds per policy


def seeded(log: pd.DataFrame, seed: int) -> pd.DataFrame:
    log = log.copy()
    log.attrs = {**log.attrs, "seed": seed}
    return log


def test_pooling_means_std_and_summed_operators() -> None:
    from chatlab.metrics import pool

    # seed 1: 2 chats each for ops 1, 2; seed 2: op 1 takes 4, op 2 none
    a = M.analyse(seeded(fixed_like(), 1))
    b_log = served_chats({1: 4}, gap=100.0).log(duration=600.0, scenario="hand", policy="exclude_last", seed=2,
                                                 source="sim", operators=[1, 2])
    b = M.analyse(b_log)
    p = pool("exclude_last", [a, b])
    assert p.seeds == (1, 2) and p.metrics["run"]["seed"] is None
    ga, gb = a.metrics["fairness"]["assignments"]["gini"], b.metrics["fairness"]["assignments"]["gini"]
    assert (ga, gb) == (pytest.approx(0.0), pytest.approx(0.5))
    assert p.metrics["fairness"]["assignments"]["gini"] == pytest.approx(0.25)
    assert p.spread["fairness"]["assignments"]["gini"] == pytest.approx(0.25)  # population std of (0, .5)
    assert p.metrics["counts"]["assignments"] == pytest.approx(4.0) and p.spread["counts"]["assignments"] == 0.0
    assert p.metrics["fairness"]["assignments"]["max_min_ratio"] == pytest.approx(1.0)  # None in seed 2: left out
    po = p.per_operator.set_index("operator_id")
    assert list(po["assignments"]) == [6, 2] and po.loc[1, "assignment_share"] == pytest.approx(0.75)
    assert len(p.waits) == len(a.waits) + len(b.waits)
    assert list(M.flatten_metrics(p.metrics)) == M.documented_keys()  # same documented layout


def test_mean_state_counts_of_two_step_functions() -> None:
    from chatlab.metrics.pooling import mean_state_counts

    cols = {s: [0, 0] for s in M.ALL_STATES}
    one = pd.DataFrame({"time": [0.0, 10.0], **cols})
    one["waiting_assignment"] = [2, 0]
    two = pd.DataFrame({"time": [0.0, 5.0], **cols})
    two["waiting_assignment"] = [0, 4]
    mean = mean_state_counts([one, two])
    assert list(mean["time"]) == [0.0, 5.0, 10.0]
    assert list(mean["waiting_assignment"]) == [1.0, 3.0, 2.0]


def test_multi_seed_comparison_report_and_rebuild(tmp_path: Path) -> None:
    runs = [M.analyse(seeded(legacy_like(), s)) for s in (1, 2)] + [M.analyse(seeded(fixed_like(), s)) for s in (1, 2)]
    out = write_comparison_report(runs, tmp_path / "c")
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["labels"] == ["legacy", "exclude_last"]
    assert meta["seeds"] == {"legacy": [1, 2], "exclude_last": [1, 2]}
    assert meta["subdirs"] == ["legacy-seed1", "legacy-seed2", "exclude_last-seed1", "exclude_last-seed2"]
    assert meta["runs"]["legacy"]["assignment"]["repeat_rate"] == pytest.approx(0.5)
    assert meta["std"]["legacy"]["assignment"]["repeat_rate"] == 0.0
    assert meta["per_seed"]["exclude_last"]["2"]["run"]["seed"] == 2
    assert list(M.flatten_metrics(meta["runs"]["legacy"])) == M.documented_keys()
    assert len(pd.read_csv(out / "metrics.csv")) == 4
    md = (out / "summary.md").read_text()
    assert "mean ± 95 % CI over seeds 1, 2" in md and "| seed | 1,2 | 1,2 |" in md and "50.0% ± 0.0%" in md
    assert meta["ci95"]["legacy"]["assignment"]["repeat_rate"] == 0.0
    for name in PLOT_FILES.values():
        assert (out / name).read_bytes().startswith(PNG_MAGIC)
    reloaded = load_runs(out)  # chatlab report DIR: same order, seeds kept apart, same pooled table
    assert [(r.label, r.metrics["run"]["seed"]) for r in reloaded] == [
        ("legacy", 1), ("legacy", 2), ("exclude_last", 1), ("exclude_last", 2)]
    with pytest.raises(ReportError, match="unique"):
        write_comparison_report([runs[0], runs[0]], tmp_path / "d")


# (the analyst notebooks run in a real Jupyter kernel: tests/test_notebooks.py)


def test_report_header_names_every_source_of_a_mixed_comparison() -> None:
    """A sim-vs-load-test report must not call itself 'source: sim' just because sim came first."""
    import types

    from chatlab.report.sections import run_facts

    def run(source: str):
        return types.SimpleNamespace(metrics={
            "run": {"scenario": "baseline", "source": source, "mode": "pull", "duration_s": 10.0},
            "params": {"service_level_t_s": 60.0, "stuck_after_s": 1800.0}})

    header = dict(run_facts([run("sim"), run("loadtest"), run("sim")]))
    assert header["source"] == "sim, loadtest"
    assert header["scenario"] == "baseline"
