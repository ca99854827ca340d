"""Bring your own target: the lab measures an outside system through its target file, under real Locust.

The shipped targets are load-tested on the session's embedded PostgreSQL through ``chatlab
gate SCENARIO --target``: the seed's pre-fix system (UUID ids, its own function names) must
fail the "no repeat assignments" gate, the seed's fix and the lab's own functions must pass
it.  A bad target file is one line, exit 2, and leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.target import FLOWS, REQUIRED, TargetError, load_target

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ROOT / "loadtest" / "targets"


def chatlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chatlab.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _schemas(pg_uri: str) -> set[str]:
    import psycopg

    with psycopg.connect(pg_uri, autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'lt_%'")}


@pytest.mark.parametrize("name", ["lab", "seed_fix", "seed_prefix"])
def test_the_shipped_targets_load_and_have_every_flow(name: str) -> None:
    target = load_target(name)
    assert set(REQUIRED) <= set(target.flows) <= set(FLOWS)
    assert target.missing == () and all(p.is_file() for p in target.schema_files)
    assert target.ids == ("bigint" if name == "lab" else "uuid")


@pytest.mark.parametrize("name, passes", [("seed_prefix", False), ("seed_fix", True), ("lab", True)])
def test_the_gate_fails_the_seeds_pre_fix_system_and_passes_its_fix(name: str, passes: bool, pg_uri: str,
                                                                    tmp_path: Path) -> None:
    before = _schemas(pg_uri)
    proc = chatlab("gate", "steady_floor", "--target", name, "--run-time", "20", "--database-url", pg_uri,
                   "--no-progress", "--out", str(tmp_path))
    assert proc.returncode == (0 if passes else 1), proc.stdout + proc.stderr[-2000:]
    lines = {re.search(r"\]: (\w+) =", ln).group(1): ln for ln in proc.stdout.splitlines()
             if ln.startswith(("PASS", "FAIL"))}
    assert lines["repeat_rate"].startswith("PASS" if passes else "FAIL")
    assert lines["capacity_overshoot"].startswith("PASS")
    [report] = list(tmp_path.iterdir())
    metrics = json.loads((report / "metrics.json").read_text())
    results = json.loads((report / "loadtest.json").read_text())
    assert metrics["run"]["policy"] == f"target-{name}"
    assert metrics["counts"]["chats"] > 100 and metrics["assignment"]["total"] > 200
    assert (metrics["assignment"]["repeat"] == 0) is passes
    assert results["integrity"]["double_assigned"] == 0 and results["integrity"]["over_capacity"] == 0
    assert any(f"target {name}" in n for n in results["notes"])
    # the target's UUIDs are mapped back to the lab's operators 1..16
    per_op = (report / "per_operator.csv").read_text().splitlines()[1:]
    assert sorted(int(line.split(",")[0]) for line in per_op) == list(range(1, 17))
    assert _schemas(pg_uri) == before  # the run's schema was dropped


def test_compare_real_puts_a_target_beside_the_model_of_its_policy(pg_uri: str, tmp_path: Path) -> None:
    proc = chatlab("compare-real", "steady_floor", "--target", "seed_fix", "--policies", "exclude_last",
                   "--run-time", "10", "--database-url", pg_uri, "--no-progress", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = json.loads((tmp_path / "sim_vs_real.json").read_text())
    row = saved["policies"]["target-seed_fix"]
    assert row["assignment.repeat_rate"]["simulation"] == 0 and row["assignment.repeat_rate"]["load_test"] == 0
    assert row["counts.chats"]["relative_difference"] == pytest.approx(0, abs=0.1)
    assert any("policy exclude_last" in n for n in saved["notes"])


def _bad(tmp_path: Path, name: str, edit) -> Path:  # noqa: ANN001
    text = (TARGETS / "seed_fix.toml").read_text()
    for folder in ("seed_fix", "seed_prefix"):  # the copy lives elsewhere: its SQL paths made absolute
        text = text.replace(f'"{folder}/', f'"{TARGETS}/{folder}/')
    path = tmp_path / f"{name}.toml"
    path.write_text(edit(text))
    return path


BAD_FILES = [
    ("unknown_flow", lambda t: t + 'teleport = "SELECT 1"\n', "flows.teleport: unknown flow"),
    ("unknown_param", lambda t: t.replace("assign_chat_to_operator(%(operator_id)s::uuid)",
                                          "assign_chat_to_operator(%(operator)s::uuid)"),
     "flows.assign: unknown parameter %(operator)s"),
    ("missing_flow", lambda t: "\n".join(ln for ln in t.splitlines() if not ln.startswith("assign =")),
     "flows.assign: missing"),
    ("missing_file", lambda t: t.replace("016_chat_state_verification.sql", "016_nowhere.sql"),
     "schema_files: no file"),
    ("bad_ids", lambda t: t.replace('ids = "uuid"', 'ids = "text"'), "ids: expected"),
]


@pytest.mark.parametrize("name, edit, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_target_file_is_named_in_one_line(name: str, edit, message: str, tmp_path: Path) -> None:  # noqa: ANN001
    path = _bad(tmp_path, name, edit)
    with pytest.raises(TargetError, match=message.replace("(", r"\(").replace(")", r"\)").replace("%", "%")):
        load_target(path)


def test_a_statement_that_fails_on_the_probe_stops_the_run_before_anything_is_written(pg_uri: str,
                                                                                      tmp_path: Path) -> None:
    path = _bad(tmp_path, "broken_assign", lambda t: t.replace("SELECT assign_chat_to_operator(%(operator_id)s::uuid)",
                                                                "SELECT assign_chat(%(operator_id)s::uuid)"))
    before = _schemas(pg_uri)
    out = tmp_path / "out"
    cases = [
        (("loadtest", "steady_floor", "--target", str(path), "--run-time", "5", "--database-url", pg_uri, "--out",
          str(out)), "flows.assign failed on a probe"),
        (("gate", "steady_floor", "--target", str(path), "--run-time", "5", "--database-url", pg_uri, "--out",
          str(out)), "flows.assign failed on a probe"),
        (("loadtest", "steady_floor", "--target", "nosuch", "--out", str(out)), "no target file 'nosuch'"),
        (("loadtest", "steady_floor", "--target", "seed_fix", "--policy", "legacy", "--out", str(out)),
         "--policy: a target plays its own assign"),
        (("gate", "steady_floor", "--target", "seed_fix", "--policy", "legacy", "--out", str(out)), "--policy"),
        (("compare-real", "steady_floor", "--target", "seed_fix", "--out", str(out)), "--policies: with --target"),
        (("loadtest", "steady_floor", "--target", str(_bad(tmp_path, "u", BAD_FILES[0][1])), "--out", str(out)),
         "flows.teleport: unknown flow"),
    ]
    for args, message in cases:
        proc = chatlab(*args, "--no-progress")
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr[-2000:])
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert not out.exists()
    assert _schemas(pg_uri) == before


def test_a_target_without_the_optional_flows_runs_and_the_report_says_what_it_lacks(pg_uri: str,
                                                                                    tmp_path: Path) -> None:
    optional = ("unassign =", "online =", "offline =", "touch =", "idle_detection =", "stuck_release =")
    # without log-in flows its operators must be created online (else the probe's assign finds nobody)
    path = _bad(tmp_path, "minimal", lambda t: "\n".join(ln for ln in t.splitlines() if not ln.startswith(optional))
                .replace("%(max_chats)s, false)", "%(max_chats)s, true)"))
    assert set(load_target(path).missing) == {"unassign", "online", "offline", "touch", "idle_detection",
                                              "stuck_release"}
    out = tmp_path / "out"
    proc = chatlab("loadtest", "steady_floor", "--target", str(path), "--run-time", "8", "--database-url", pg_uri,
                   "--no-progress", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "loadtest.json").read_text())
    [lacks] = [n for n in results["notes"] if "lacks flows" in n]
    assert "unassign (operators reply instead" in lacks and "idle_detection" in lacks
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["assignment"]["total"] > 50 and metrics["assignment"]["repeat"] == 0
    assert "lacks flows" in (out / "summary.md").read_text()
