"""The README's quick start and .ci/run must not drift apart."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = re.search(r"(?is)^#+\s*quick\s*start(.*?)(?=^#+\s|\Z)", text, re.M)
    assert section, "README.md has no Quick start section"
    blocks = re.findall(r"```(?:\w+)?\n(.*?)```", section.group(1), re.S)
    return [ln.strip() for b in blocks for ln in b.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def test_quick_start_has_exactly_two_commands() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2, commands
    assert "chatlab" in commands[0] and "pip install" in commands[0]
    assert "pytest" in commands[1] and "pip install" in commands[1]


def test_ci_runs_the_second_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    assert quick_start_commands()[1] in ci.splitlines()


def test_policy_names_in_readme_match_the_code() -> None:
    from sim.policies import POLICY_NAMES

    text = (ROOT / "README.md").read_text()
    quick = quick_start_commands()[0]
    for name in POLICY_NAMES:
        assert f"`{name}`" in text
        assert name in quick


def test_metrics_key_table_in_readme_is_the_generated_one() -> None:
    """The README documents metrics.json; regenerate with metric_docs_markdown() when it fails."""
    from chatlab.metrics import metric_docs_markdown

    assert metric_docs_markdown().strip() in (ROOT / "README.md").read_text()


def test_scenario_table_in_readme_lists_every_shipped_scenario() -> None:
    text = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "scenarios").glob("*.toml")):
        assert f"| `{path.stem}` |" in text, path.stem


def test_scenario_field_table_in_readme_is_the_generated_one() -> None:
    """The README documents the scenario format; regenerate with field_docs_markdown() when it fails."""
    from sim.scenario.fields import field_docs_markdown

    assert field_docs_markdown().strip() in (ROOT / "README.md").read_text()
