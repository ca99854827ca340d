"""Glue between the commands and the simulation: load scenarios, apply overrides, run grids.

The simulation itself lives in ``sim/model.py`` and ``sim/scenario.py`` (imported lazily so
``chatlab gate LOGFILE`` and ``chatlab report`` work without touching SimPy).  Everything a
user types here (seed ranges, ``--set`` overrides, durations) is validated and a mistake
raises a :class:`~sim.statemachine.ChatLabError` naming what was wrong.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from chatlab.metrics import DEFAULT_SERVICE_LEVEL_T
from sim.errors import ChatLabError


class UsageError(ChatLabError):
    """A command-line value that cannot be used (bad seed range, bad --set, bad duration)."""


# --------------------------------------------------------------------------- arguments


def add_metric_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every reporting command shares."""
    parser.add_argument("--service-level-t", type=float, default=DEFAULT_SERVICE_LEVEL_T, metavar="S",
                        help="service-level threshold T in seconds (default %(default)s)")
    parser.add_argument("--stuck-after", type=float, default=None, metavar="S",
                        help="an assigned chat older than this is stuck (default: the scenario's, else 3600 s)")


def add_simulation_arguments(parser: argparse.ArgumentParser, *, seed_help: str = "random seed (default: the scenario's)",
                             multi_seed: bool = False,
                             seeds_help: str = "several seeds: N, A-B or a list like 1-5,9 (every run is repeated "
                                               "per seed; tables show the mean ± std over seeds)") -> None:
    parser.add_argument("--seed", type=int, default=None, metavar="N", help=seed_help)
    if multi_seed:
        parser.add_argument("--seeds", default=None, metavar="SEEDS", help=seeds_help)
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="simulate only this many scenario seconds (default: the scenario's duration)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def check_metric_arguments(args: argparse.Namespace) -> None:
    if not (args.service_level_t >= 0):
        raise UsageError(f"--service-level-t must be >= 0 seconds, got {args.service_level_t:g}")
    if args.stuck_after is not None and not (args.stuck_after > 0):
        raise UsageError(f"--stuck-after must be > 0 seconds, got {args.stuck_after:g}")


def parse_seeds(text: str) -> list[int]:
    """``"1-5"`` -> [1..5]; ``"1,3,9"``; ``"1-3,10"``.  Order kept, repeats dropped."""
    seeds: list[int] = []
    for part in (p.strip() for p in str(text).split(",")):
        m = re.fullmatch(r"(-?\d+)(?:\s*-\s*(-?\d+))?", part)
        if not m:
            raise UsageError(f"--seeds: cannot read {part!r}; expected N, A-B or a comma list like 1-5,9")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise UsageError(f"--seeds: range {part!r} is empty (end before start)")
        if hi - lo > 10_000:
            raise UsageError(f"--seeds: range {part!r} is too large (more than 10000 seeds)")
        seeds.extend(range(lo, hi + 1))
    return list(dict.fromkeys(seeds))


def resolve_seeds(args: argparse.Namespace) -> list[int | None]:
    """The seeds a command runs: ``--seeds`` (a list), else ``[--seed]`` (``None`` = the scenario's)."""
    seeds_text = getattr(args, "seeds", None)
    if seeds_text is not None:
        if args.seed is not None:
            raise UsageError("give either --seed or --seeds, not both")
        return list(parse_seeds(seeds_text))
    return [args.seed]


def _scalar(text: str) -> Any:
    text = text.strip()
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_set(text: str) -> tuple[str, list[Any]]:
    """``"operators.count=3,4,5"`` -> ("operators.count", [3, 4, 5])."""
    if "=" not in text:
        raise UsageError(f"--set {text!r}: expected FIELD=VALUE[,VALUE...], e.g. operators.count=3,4,5")
    field, values = text.split("=", 1)
    field = field.strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", field):
        raise UsageError(f"--set {text!r}: {field!r} is not a field path like operators.count")
    items = [_scalar(v) for v in values.split(",") if v.strip()]
    if not items:
        raise UsageError(f"--set {text!r}: no value after '='")
    return field, items


def default_out(scenario: str, *parts: str) -> Path:
    """``reports/<scenario>/<parts...>`` with file-system-safe names."""
    safe = [re.sub(r"[^A-Za-z0-9._=,-]+", "_", str(p)).strip("_") or "x" for p in (Path(scenario).stem, *parts)]
    return Path("reports").joinpath(*safe)


# --------------------------------------------------------------------------- scenarios


def load_scenario(name_or_path: str) -> Any:
    """``sim.scenario.load_scenario`` (raises ScenarioError, a ChatLabError, on a bad name/file)."""
    from sim.scenario import load_scenario as _load

    return _load(name_or_path)


def scenario_name(scenario: Any) -> str:
    return str(getattr(scenario, "name", None) or "scenario")


def _replace_path(obj: Any, path: Sequence[str], value: Any, full: str) -> Any:
    """Return ``obj`` with the (nested) field at ``path`` replaced; dataclasses and mappings."""
    head, rest = path[0], path[1:]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        names = [f.name for f in dataclasses.fields(obj)]
        if head not in names:
            raise UsageError(f"--set {full}: {type(obj).__name__} has no field {head!r}; fields: {', '.join(names)}")
        new = value if not rest else _replace_path(getattr(obj, head), rest, value, full)
        return dataclasses.replace(obj, **{head: new})
    if isinstance(obj, Mapping):
        if head not in obj:
            raise UsageError(f"--set {full}: no field {head!r}; fields: {', '.join(map(str, obj))}")
        new = value if not rest else _replace_path(obj[head], rest, value, full)
        return {**obj, head: new}
    raise UsageError(f"--set {full}: {head!r} is not inside a section that can be changed")


def override(scenario: Any, changes: Mapping[str, Any]) -> Any:
    """A copy of ``scenario`` with dotted fields replaced (``{"operators.count": 4}``).

    Uses the scenario's own ``with_overrides``/``override`` method when it has one (so its
    validation runs); otherwise replaces dataclass fields and re-validates when possible.
    """
    if not changes:
        return scenario
    for method in ("with_overrides", "override", "replace"):
        fn = getattr(scenario, method, None)
        if callable(fn):
            return fn(dict(changes))
    result = scenario
    for field, value in changes.items():
        result = _replace_path(result, field.split("."), value, f"{field}={value}")
    validate = getattr(result, "validate", None)
    if callable(validate):
        validate()
    return result


def with_duration(scenario: Any, duration: float | None) -> Any:
    """The scenario shortened (or lengthened) to ``duration`` scenario seconds."""
    if duration is None:
        return scenario
    if not (duration > 0):
        raise UsageError(f"--duration must be > 0 seconds, got {duration:g}")
    return override(scenario, {"duration": float(duration)})


def simulate(scenario: Any, policy: str | None, seed: int | None, *, progress: bool = False) -> pd.DataFrame:
    """One simulated event log (``sim.model.run_simulation``)."""
    from sim.model import run_simulation

    return run_simulation(scenario, policy, seed=seed, progress=progress)


# --------------------------------------------------------------------------- grids


@dataclass(frozen=True)
class GridPoint:
    """One run of a grid: parameter overrides, policy, seed."""

    overrides: tuple[tuple[str, Any], ...]
    policy: str
    seed: int | None

    @property
    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in self.overrides] + [self.policy]
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        return " ".join(parts)


def grid(sets: Sequence[tuple[str, list[Any]]], policies: Sequence[str], seeds: Sequence[int | None]) -> Iterator[GridPoint]:
    """The cartesian product of every --set's values x policies x seeds."""
    fields = [f for f, _ in sets]
    if len(set(fields)) != len(fields):
        raise UsageError(f"--set given twice for the same field: {fields}")
    for combo in itertools.product(*(values for _, values in sets)):
        for policy in policies:
            for seed in seeds:
                yield GridPoint(tuple(zip(fields, combo)), policy, seed)


def progress_bar(total: int, desc: str, *, disable: bool = False) -> Any:
    """A tqdm bar on stderr (hidden when ``disable``)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="run", disable=disable or total <= 0, leave=False)
