"""The gate's result as files a CI pipeline reads: JUnit XML (``--junit``) and JSON (``--json``).

CI systems show JUnit reports natively (GitLab's ``artifacts:reports:junit``, Jenkins,
GitHub via a report action), so every run x bound becomes one ``<testcase>``: the run's
label is its ``classname`` (one ``<testsuite>`` per run) and the bound in the metric's own
units its ``name`` (``assignment.repeat_rate <= 0``); a broken bound is a ``<failure>``
whose ``message`` carries value, bound and margin.  The JSON file is the same result for
scripts: every check with value, bound, margin and passed, and the overall verdict.

Values are written in the metric's units (a rate is a fraction, not a percentage), as in
``metrics.json``; a value that could not be measured is ``null`` and fails, as on stdout.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from chatlab.gate import Check, GateError, GateResult

#: The version of the JSON layout (bumped when a key changes meaning).
JSON_SCHEMA = "chatlab-gate/1"


def _num(value: float | None) -> float | None:
    """JSON has no NaN or infinity: a non-finite number is written as null."""
    return value if value is not None and math.isfinite(value) else None


def check_record(check: Check) -> dict[str, Any]:
    """One run x bound as the JSON file holds it."""
    return {
        "run": check.run,
        "name": check.bound.test_name(),
        "metric": check.bound.key,
        "kind": check.bound.kind,
        "bound": check.bound.limit,
        "value": _num(check.value),
        "margin": _num(check.margin),
        "passed": check.passed,
    }


def result_record(result: GateResult) -> dict[str, Any]:
    """The whole gate: the verdict, the counts and every check (in the order printed)."""
    checks = [check_record(c) for c in result.checks]
    return {
        "schema": JSON_SCHEMA,
        "passed": result.passed,
        "checks": len(checks),
        "failures": sum(not c["passed"] for c in checks),
        "runs": list(dict.fromkeys(c.run for c in result.checks)),
        "results": checks,
    }


def failure_message(check: Check) -> str:
    """``value = 0.25, bound <= 0, margin -0.25``: what the CI system shows next to the failed case."""
    if check.value is None:
        return f"value = n/a (not measurable in this run: no data), bound {check.bound.operator} {check.bound.limit:g}"
    return f"value = {check.value:g}, bound {check.bound.operator} {check.bound.limit:g}, margin {check.margin:g}"


def junit_tree(result: GateResult, suite_name: str = "chatlab gate") -> ET.ElementTree:
    """``<testsuites>`` with one ``<testsuite>`` per run and one ``<testcase>`` per bound."""
    root = ET.Element("testsuites", name=suite_name, tests=str(len(result.checks)),
                      failures=str(sum(not c.passed for c in result.checks)), errors="0", time="0")
    by_run: dict[str, list[Check]] = {}
    for check in result.checks:
        by_run.setdefault(check.run, []).append(check)
    for run, checks in by_run.items():
        suite = ET.SubElement(root, "testsuite", name=run, tests=str(len(checks)),
                              failures=str(sum(not c.passed for c in checks)), errors="0", skipped="0", time="0")
        for check in checks:
            case = ET.SubElement(suite, "testcase", classname=run, name=check.bound.test_name(), time="0")
            if not check.passed:
                failure = ET.SubElement(case, "failure", message=failure_message(check), type="BoundBroken")
                failure.text = check.line()
            else:
                ET.SubElement(case, "system-out").text = check.line()
    ET.indent(root)
    return ET.ElementTree(root)


def check_output_paths(paths: dict[str, Path | None]) -> None:
    """Fail before any run when an output file cannot be written: a directory, a file as a
    parent, or one path given twice (``{"--junit": path, ...}``)."""
    seen: dict[Path, str] = {}
    for option, path in paths.items():
        if path is None:
            continue
        if path.is_dir():
            raise GateError(f"{option}: {path} is a directory; expected a file path")
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise GateError(f"{option}: {parent} is not a directory, so {path} cannot be written")
        key = path.resolve()
        if key in seen:
            raise GateError(f"{option}: {path} is also the {seen[key]} file; expected two different files")
        seen[key] = option


def write_junit(result: GateResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_tree(result).write(path, encoding="utf-8", xml_declaration=True)
    return path


def write_json(result: GateResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result_record(result), indent=2, allow_nan=False) + "\n")
    return path
