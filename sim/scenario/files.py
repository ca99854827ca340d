"""Scenario files: a bare name is ``scenarios/<name>.toml`` (here, in the repository, or installed);
a path is read as given.  Reading and validating is :func:`load_scenario`."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from sim.errors import ScenarioError
from sim.scenario.reader import parse_scenario
from sim.scenario.spec import Scenario


def scenario_dirs() -> list[Path]:
    """Where bare scenario names are looked up, in order: ./scenarios, the repository's, the installed package's."""
    dirs = [Path.cwd() / "scenarios", Path(__file__).resolve().parents[2] / "scenarios"]
    try:
        from importlib.resources import files

        pkg = files("scenarios")
        dirs.append(Path(str(pkg)))
    except Exception:  # not installed as a package: the two above are enough
        pass
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [o.resolve() for o in out]:
            out.append(d)
    return out


def available_scenarios() -> list[str]:
    """Names of the scenarios a bare name can refer to."""
    return sorted({p.stem for d in scenario_dirs() for p in d.glob("*.toml")})


def resolve_scenario_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A file path as given, or ``scenarios/<name>.toml`` for a bare name."""
    text = os.fspath(name_or_path)
    path = Path(text)
    looks_like_path = path.suffix == ".toml" or os.sep in text or "/" in text
    if path.is_file():
        return path
    if path.is_dir():
        raise ScenarioError(text, "", "a scenario .toml file; it is a directory")
    if looks_like_path:
        raise ScenarioError(text, "", "an existing scenario file (no such file)")
    for d in scenario_dirs():
        candidate = d / f"{text}.toml"
        if candidate.is_file():
            return candidate
    raise ScenarioError(text, "", f"a scenario name ({', '.join(available_scenarios()) or 'none found'}) "
                                  f"or a path to a .toml file")


def load_scenario(name_or_path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario file (a bare name means ``scenarios/<name>.toml``)."""
    if isinstance(name_or_path, Scenario):
        return name_or_path
    path = resolve_scenario_path(name_or_path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(str(path), "", f"a readable file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")  # TOML is UTF-8; an editor's byte-order mark is tolerated
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ScenarioError(str(path), "", f"a UTF-8 text file (TOML); byte 0x{raw[exc.start]:02x} on line {line} "
                                           "is not UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), "", f"valid TOML ({exc})") from None
    return parse_scenario(data, source=str(path), base_dir=path.parent, default_name=path.stem)

