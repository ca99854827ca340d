"""The gate in CI: JUnit XML and JSON results, ``[tool.chatlab.gate]`` in pyproject.toml, and the
shipped pipeline examples (examples/ci), whose ``chatlab`` commands are run as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
import yaml

from chatlab import metrics as M
from chatlab.cli import main
from chatlab.gate import Bound, Check, GateResult, evaluate, make_bounds
from chatlab.gate.output import check_record, junit_tree, result_record
from chatlab.report import write_run_report
from test_report import fixed_like, legacy_like

ROOT = Path(__file__).resolve().parents[1]
JUNIT_XSD = xmlschema.XMLSchema(ROOT / "tests" / "data" / "junit.xsd")


def gate(argv: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple:
    """``chatlab gate ARGV`` in ``cwd``, in-process (no interpreter start-up): (exit code, stdout, stderr)."""
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # chatlab.cli.main rewrites it
    code = main(["gate", *argv, "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def junit_counts(path: Path) -> dict:
    """The JUnit file checked against the schema and its counts against its cases."""
    JUNIT_XSD.validate(str(path))
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    cases = root.findall("testsuite/testcase")
    failed = [c for c in cases if c.find("failure") is not None]
    assert int(root.get("tests")) == len(cases) and int(root.get("failures")) == len(failed)
    for suite in root.findall("testsuite"):
        mine = suite.findall("testcase")
        assert int(suite.get("tests")) == len(mine)
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in mine)
        assert {c.get("classname") for c in mine} == {suite.get("name")}
    return {"cases": cases, "failed": failed}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate-ci")
    write_run_report(M.analyse(legacy_like()), root / "legacy", plots=False)
    write_run_report(M.analyse(fixed_like()), root / "fixed", plots=False)
    return {"legacy": root / "legacy", "fixed": root / "fixed"}


# ----------------------------------------------------------------- the writers


def test_junit_has_one_testcase_per_run_and_bound_and_failures_carry_value_bound_margin(tmp_path: Path) -> None:
    bounds = make_bounds({"max_repeat_rate": 0.0, "min_jain": 0.9})
    result = evaluate([M.analyse(fixed_like()), M.analyse(legacy_like())], bounds)
    path = tmp_path / "junit.xml"
    junit_tree(result).write(path, encoding="utf-8", xml_declaration=True)
    found = junit_counts(path)
    assert len(found["cases"]) == 4 and len(found["failed"]) == len([c for c in result.checks if not c.passed]) >= 1
    names = [(c.get("classname"), c.get("name")) for c in found["cases"]]
    runs = [c.run for c in result.checks]
    assert names == [(r, n) for r, n in zip(runs, ["assignment.repeat_rate <= 0",
                                                   "fairness.assignments_per_online_hour.jain >= 0.9"] * 2)]
    repeat = next(c for c in found["failed"] if c.get("name") == "assignment.repeat_rate <= 0").find("failure")
    assert repeat.get("message") == "value = 0.5, bound <= 0, margin -0.5"  # legacy_like: 3 repeats of 6 assigns
    assert "50% over the bound" in repeat.text


def test_a_schema_violation_is_caught(tmp_path: Path) -> None:
    """The XSD is not a rubber stamp: a case without classname, or a negative count, fails it."""
    bad = tmp_path / "bad.xml"
    bad.write_text('<testsuites><testsuite name="s" tests="1" failures="0"><testcase name="x"/></testsuite>'
                   "</testsuites>")
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        JUNIT_XSD.validate(str(bad))
    bad.write_text('<testsuites><testsuite name="s" tests="-1" failures="0"/></testsuites>')
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        JUNIT_XSD.validate(str(bad))


def test_json_record_has_every_check_with_value_bound_margin_passed() -> None:
    jain = Bound("jain", "fairness.assignments_per_online_hour.jain", "min", 0.9)
    result = GateResult((Check("a", jain, 0.95), Check("b", jain, 0.85), Check("b", jain, None)))
    record = json.loads(json.dumps(result_record(result), allow_nan=False))
    assert record["passed"] is False and record["checks"] == 3 and record["failures"] == 2
    assert record["runs"] == ["a", "b"]
    first, low, missing = record["results"]
    assert first == {"run": "a", "name": "fairness.assignments_per_online_hour.jain >= 0.9",
                     "metric": "fairness.assignments_per_online_hour.jain", "kind": "min", "bound": 0.9,
                     "value": 0.95, "margin": pytest.approx(0.05), "passed": True}
    assert low["margin"] == pytest.approx(-0.05) and low["passed"] is False
    assert missing["value"] is None and missing["margin"] is None and missing["passed"] is False


def test_the_margin_is_printed_on_pass_too() -> None:
    p99 = Bound("p99_wait", "wait.p99_s", "max", 120.0, "s")
    assert Check("r", p99, 90.0).line() == "PASS  r: p99_wait = 90 s (bound <= 120 s): margin 30 s"
    assert Check("r", p99, 150.0).line() == "FAIL  r: p99_wait = 150 s (bound <= 120 s): 30 s over the bound"


def test_readme_documents_every_json_key_and_the_config_keys() -> None:
    from chatlab.gate.config import KEYS

    text = (ROOT / "README.md").read_text()
    section = re.search(r"^### CI gate\n(.*?)(?=^#)", text, re.S | re.M).group(1)
    record = result_record(GateResult((Check("a", Bound("x", "k", "max", 0.0), 0.0),)))
    for key in [*record, *check_record(Check("a", Bound("x", "k", "max", 0.0), 0.0)), *KEYS]:
        assert f"`{key}`" in section, key
    assert "margin" in section and "[tool.chatlab.gate]" in section


# ----------------------------------------------------------------- the command


def test_gate_writes_junit_and_json_on_failure(saved: dict[str, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "ci"  # does not exist yet: created
    code, stdout, _ = gate([str(saved["legacy"]), str(saved["fixed"]), "--junit", str(out / "j.xml"),
                            "--json", str(out / "g.json")], tmp_path, monkeypatch, capsys)
    assert code == 1 and stdout.strip().endswith("gate FAILED: 2 of 6 checks")
    found = junit_counts(out / "j.xml")
    assert len(found["cases"]) == 6 and len(found["failed"]) == 2
    record = json.loads((out / "g.json").read_text())
    assert record["passed"] is False and record["failures"] == 2 and len(record["results"]) == 6
    assert [r["passed"] for r in record["results"]] == ["PASS" in ln for ln in stdout.splitlines()[:6]]


@pytest.mark.parametrize("junit", ["DIR", "FILE/j.xml"])
def test_an_unwritable_output_path_is_exit_2_before_anything_runs(
        saved: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
        junit: str) -> None:
    (tmp_path / "DIR").mkdir()
    (tmp_path / "FILE").write_text("x")
    code, stdout, err = gate([str(saved["fixed"]), "--junit", junit, "--json", "g.json"], tmp_path, monkeypatch, capsys)
    assert code == 2 and stdout == "" and len(err.strip().splitlines()) == 1 and "--junit" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DIR", "FILE"]


def pyproject(directory: Path, body: str) -> Path:
    (directory / "pyproject.toml").write_text("[project]\nname = 'x'\n\n" + body)
    return directory


def test_gate_without_targets_runs_the_config_and_options_override_it(
        saved: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    pyproject(tmp_path, f"""[tool.chatlab.gate]
scenarios = [{json.dumps(str(saved["legacy"]))}]
junit = "out/junit.xml"
[tool.chatlab.gate.bounds]
max-premature-rate = "off"
max_capacity_overshoot = "off"
min-jain = 0.99
""")
    code, stdout, _ = gate([], tmp_path, monkeypatch, capsys)
    assert code == 1 and "gate of pyproject.toml [tool.chatlab.gate]" in stdout
    assert "premature_rate" not in stdout and "capacity" not in stdout  # "off" in the config
    assert "FAIL" in next(ln for ln in stdout.splitlines() if "repeat_rate" in ln)  # on by default
    assert "FAIL" in next(ln for ln in stdout.splitlines() if "jain" in ln)
    assert len(junit_counts(tmp_path / "out" / "junit.xml")["cases"]) == 2
    code, stdout, _ = gate(["--max-repeat-rate", "off", "--min-jain", "0.1", "--junit", "other.xml"], tmp_path,
                           monkeypatch, capsys)
    assert code == 0 and stdout.count("PASS ") == 1 and "repeat_rate" not in stdout, stdout
    assert (tmp_path / "other.xml").is_file()
    # a TARGET on the command line: the config is not read (its jain bound does not apply)
    code, stdout, _ = gate([str(saved["fixed"])], tmp_path, monkeypatch, capsys)
    assert code == 0 and "jain" not in stdout and "gate of" not in stdout


def test_config_policies_times_seeds_and_a_cli_seed_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture) -> None:
    pyproject(tmp_path, """[tool.chatlab.gate]
scenarios = ["baseline"]
policies = ["legacy", "exclude_last"]
seeds = [1, 2]
duration = 1800
""")
    code, stdout, _ = gate([], tmp_path, monkeypatch, capsys)
    runs = re.findall(r"^(?:PASS|FAIL)  (baseline \[\w+, seed \d\]): repeat_rate", stdout, re.M)
    assert runs == [f"baseline [{p}, seed {s}]" for p in ("legacy", "exclude_last") for s in (1, 2)]
    assert code == 1 and all(ln.startswith("FAIL") for ln in stdout.splitlines() if "[legacy" in ln
                             and "repeat_rate" in ln)
    code, stdout, _ = gate(["--policy", "exclude_last", "--seed", "3"], tmp_path, monkeypatch, capsys)
    assert code == 0 and re.findall(r"\[[\w ,.]+\]", stdout) == ["[tool.chatlab.gate]"] + \
        ["[exclude_last, seed 3]"] * 3, stdout


@pytest.mark.parametrize("body, key", [
    ("", "has no [tool.chatlab.gate] table"),
    ("[tool.chatlab.gate]\npolicies = ['legacy']\n", "scenarios: missing"),
    ("[tool.chatlab.gate]\nscenarios = 'baseline'\n", "scenarios: expected a non-empty list"),
    ("[tool.chatlab.gate]\nscenarios = ['no_such_scenario_xyz']\n", "scenarios: "),
    ("[tool.chatlab.gate]\nscenarios = ['baseline']\npolicies = ['nope']\n", "policies: "),
    ("[tool.chatlab.gate]\nscenarios = ['baseline']\nseeds = '3-1'\n", "seeds: range '3-1' is empty"),
    ("[tool.chatlab.gate]\nscenarios = ['baseline']\nseeds = 1.5\n", "seeds: expected an integer"),
    ("[tool.chatlab.gate]\nscenarios = ['baseline']\nduration = -5\n", "duration: expected a number of seconds > 0"),
    ("[tool.chatlab.gate]\nscenarios = ['baseline']\nsede = 1\n", "sede: unknown key"),
    ("[tool.chatlab.gate]\nscenarios = ['baseline']\njunit = 'DIR'\n", "junit: DIR is a directory"),
    ("[tool.chatlab.gate]\nscenarios = ['baseline']\n[tool.chatlab.gate.bounds]\nmin-jain = 2\n",
     "[tool.chatlab.gate.bounds] min-jain: expected a number between 0 and 1"),
    ("[tool.chatlab.gate]\nscenarios = ['baseline']\n[tool.chatlab.gate.bounds]\nmax-speed = 1\n",
     "[tool.chatlab.gate.bounds] max-speed: unknown bound"),
    ("[tool.chatlab.gate\n", "not valid TOML"),
])
def test_a_bad_config_is_one_line_naming_pyproject_and_the_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, body: str, key: str) -> None:
    (tmp_path / "DIR").mkdir()
    if "junit" not in body:  # the run would write a report: a mistake must write nothing
        body = body.replace("[tool.chatlab.gate]\n", "[tool.chatlab.gate]\njunit = 'out/j.xml'\n", 1)
    pyproject(tmp_path, body)
    code, stdout, err = gate([], tmp_path, monkeypatch, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and stdout == "" and len(lines) == 1, err
    assert lines[0].startswith("chatlab gate: error: ") and "pyproject.toml" in lines[0] and key in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DIR", "pyproject.toml"]  # nothing written


def test_no_target_and_no_pyproject_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    code, stdout, err = gate([], tmp_path, monkeypatch, capsys)
    assert code == 2 and stdout == "" and "no TARGET given" in err and "pyproject.toml" in err


# ----------------------------------------------------------------- the shipped pipelines


def chatlab_commands(example: dict, kind: str) -> tuple[list[str], list[str]]:
    """(the ``chatlab`` command lines of the pipeline, the JUnit paths it publishes)."""
    if kind == "github":
        assert {"push", "pull_request"} <= set(example.get("on", example.get(True)) or {})
        steps = [s for job in example["jobs"].values() for s in job["steps"]]
        lines = [ln for s in steps if "run" in s for ln in s["run"].splitlines()]
        published = [s["with"]["report_paths"] for s in steps if "junit-report" in s.get("uses", "")]
        assert any(ln.startswith("pip install .") for ln in lines)
    else:
        jobs = [j for j in example.values() if isinstance(j, dict) and "script" in j]
        lines = [ln for j in jobs for ln in j["script"]]
        published = [j["artifacts"]["reports"]["junit"] for j in jobs]
        assert all(j["artifacts"]["when"] == "always" for j in jobs)
        assert any(ln.startswith("pip install .") for ln in lines)
    return [ln for ln in lines if ln.startswith("chatlab ")], published


@pytest.mark.parametrize("name, kind", [("github-actions.yml", "github"), ("gitlab-ci.yml", "gitlab")])
def test_the_example_pipeline_commands_run_and_write_the_report_it_publishes(tmp_path: Path, name: str,
                                                                              kind: str) -> None:
    example = yaml.safe_load((ROOT / "examples" / "ci" / name).read_text())
    commands, published = chatlab_commands(example, kind)
    assert commands and published
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")  # the project's own [tool.chatlab.gate]
    for line in commands:
        argv = shlex.split(line)
        assert "--junit" in argv
        proc = subprocess.run([sys.executable, "-m", "chatlab.cli", *argv[1:]], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.returncode == 0, proc.stdout + proc.stderr  # the project's gate passes on its own code
        assert proc.stdout.strip().endswith("gate PASSED")
    for path in published:
        found = junit_counts(tmp_path / path)
        assert found["cases"] and not found["failed"]
