"""The repository's own gate: ``[tool.chatlab.gate]`` in ``pyproject.toml``.

A CI pipeline should run ``chatlab gate`` with no arguments and get the gate the project
defines (which scenarios, policies, seeds, which bounds), versioned with the code it
guards.  This module reads and validates that table; ``chatlab/commands/gate.py`` uses it
when no TARGET is given, and a command-line option always wins over the key it overrides.

    [tool.chatlab.gate]
    scenarios = ["baseline"]          # TARGETs: scenario names / .toml paths, report dirs, logs
    policies = ["exclude_last"]       # optional: default the scenario's own
    seeds = "1-2"                     # optional: N, "A-B,C" or [1, 2]
    duration = 1800                   # optional: simulated seconds
    junit = "reports/gate/junit.xml"  # optional: what --junit / --json would write
    [tool.chatlab.gate.bounds]        # the bound options without "--": a number or "off"
    max-repeat-rate = 0
    min-jain = 0.5

Every mistake is a :class:`GateConfigError` naming ``pyproject.toml``, the key and what was
expected (one line, exit 2), raised before anything runs.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatlab.gate import BOUND_OPTIONS
from sim.errors import ChatLabError

TABLE = "[tool.chatlab.gate]"
KEYS = ("scenarios", "policies", "seeds", "duration", "warmup", "junit", "json", "bounds")


class GateConfigError(ChatLabError):
    """``[tool.chatlab.gate]`` missing, unreadable or with a value of the wrong kind."""


@dataclass(frozen=True)
class GateConfig:
    """The table's values (``None``: not set; the command's own default applies)."""

    path: Path
    scenarios: tuple[str, ...]
    policies: tuple[str, ...] | None = None
    seeds: str | None = None
    duration: float | None = None
    warmup: str | None = None
    junit: Path | None = None
    json: Path | None = None
    #: bound option (``max_repeat_rate``) -> limit, ``None`` = "off"
    bounds: dict[str, float | None] = field(default_factory=dict)

    def error(self, key: str, expected: str) -> GateConfigError:
        return config_error(self.path, key, expected)


def config_error(path: Path, key: str, expected: str) -> GateConfigError:
    table = TABLE if key.split(".")[0] != "bounds" else TABLE[:-1] + ".bounds]"
    return GateConfigError(f"{path}: {table} {key.removeprefix('bounds.')}: {expected}")


def read_gate_config(path: Path) -> GateConfig:
    """The validated table of ``path`` (a ``pyproject.toml``)."""
    if not path.is_file():
        raise GateConfigError(f"no TARGET given and there is no {path} with a {TABLE} table; give a scenario, "
                              "a report dir or an event log, or run where the project's pyproject.toml is")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GateConfigError(f"{path}: not valid TOML ({exc})") from None
    table: Any = data
    for key in ("tool", "chatlab", "gate"):
        table = table.get(key) if isinstance(table, dict) else None
    if table is None:
        raise GateConfigError(f"no TARGET given and {path} has no {TABLE} table; give a scenario, a report dir "
                              "or an event log, or add the table (README, \"CI gate\")")
    if not isinstance(table, dict):
        raise GateConfigError(f"{path}: {TABLE} must be a table, got {type(table).__name__}")
    return parse_gate_table(table, path)


def parse_gate_table(table: dict[str, Any], path: Path) -> GateConfig:
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise config_error(path, unknown[0], f"unknown key; expected one of {', '.join(KEYS)}")
    if "scenarios" not in table:
        raise config_error(path, "scenarios", "missing; expected a list of scenario names, .toml paths or report "
                                              "dirs to gate")
    scenarios = _strings(table["scenarios"], path, "scenarios", "a non-empty list of scenario names, .toml paths "
                                                                  "or report dirs")
    policies = None
    if "policies" in table:
        policies = _strings(table["policies"], path, "policies", "a non-empty list of policy names")
        _check_policies(policies, path)
    return GateConfig(
        path=path,
        scenarios=scenarios,
        policies=policies,
        seeds=_seeds(table["seeds"], path) if "seeds" in table else None,
        duration=_duration(table["duration"], path) if "duration" in table else None,
        warmup=_warmup(table["warmup"], path) if "warmup" in table else None,
        junit=_file(table["junit"], path, "junit") if "junit" in table else None,
        json=_file(table["json"], path, "json") if "json" in table else None,
        bounds=_bounds(table.get("bounds", {}), path),
    )


def _strings(value: Any, path: Path, key: str, expected: str) -> tuple[str, ...]:
    if not (isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value)):
        raise config_error(path, key, f"expected {expected}, got {value!r}")
    return tuple(value)


def _check_policies(policies: tuple[str, ...], path: Path) -> None:
    from sim.policies import make_policy

    for name in policies:
        try:
            make_policy(name)
        except ChatLabError as exc:
            raise config_error(path, "policies", str(exc)) from None


def _seeds(value: Any, path: Path) -> str:
    """Seeds as ``--seeds`` text (the command parses it): an integer, a list of them, or "1-5,9"."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    elif isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return ",".join(str(v) for v in value)
    elif isinstance(value, str) and value.strip():
        return value
    raise config_error(path, "seeds", f"expected an integer, a list of integers or a range like \"1-5,9\", "
                                      f"got {value!r}")


def _duration(value: Any, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise config_error(path, "duration", f"expected a number of seconds > 0, got {value!r}")
    return float(value)


def _warmup(value: Any, path: Path) -> str:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
        raise config_error(path, "warmup", f"expected a number of seconds >= 0 or \"auto\", got {value!r}")
    return str(value)


def _file(value: Any, path: Path, key: str) -> Path:
    if not (isinstance(value, str) and value.strip()):
        raise config_error(path, key, f"expected a file path (a string), got {value!r}")
    return Path(value)


def _bounds(value: Any, path: Path) -> dict[str, float | None]:
    if not isinstance(value, dict):
        raise config_error(path, "bounds", f"expected a table of bounds like max-repeat-rate = 0, got {value!r}")
    names = ", ".join(o.replace("_", "-") for o in BOUND_OPTIONS)
    bounds: dict[str, float | None] = {}
    for key, limit in value.items():
        option = key.replace("-", "_")
        if option not in BOUND_OPTIONS:
            raise config_error(path, f"bounds.{key}", f"unknown bound; expected one of {names}")
        if isinstance(limit, str) and limit.strip().lower() == "off":
            bounds[option] = None
            continue
        lo, hi = BOUND_OPTIONS[option][3]
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not (lo <= limit <= hi):
            raise config_error(path, f"bounds.{key}", f"expected a number between {lo:g} and {hi:g} or \"off\", "
                                                      f"got {limit!r}")
        bounds[option] = float(limit)
    return bounds
