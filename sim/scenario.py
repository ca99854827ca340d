"""Scenario files: TOML in ``scenarios/``, validated on load into a frozen :class:`Scenario`.

A scenario says *what world* to simulate (arrivals, users, operators, shifts, background
jobs) and *which policy* by default.  The same object drives the SimPy model
(``sim/model.py``) and the Locust load test (``loadtest/flowparams.py``), so the attribute
names here are an interface.

Validation is strict because a typo in a scenario silently changes an experiment: every
wrong value raises :class:`ScenarioError` naming the file, the dotted field
(``operators.handle_time.sd``) and what was expected, and an unknown key is rejected with
the list of valid keys.  The file format is documented in the README ("Scenarios") and in
:data:`FIELD_DOCS`.
"""

from __future__ import annotations

import copy
import csv
import math
import os
import tomllib
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.distributions import Constant, Distribution, Exponential, parse_distribution
from sim.policies import POLICY_NAMES
from sim.errors import DistributionError, ScenarioError


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class Arrivals:
    """How chats arrive: ``poisson`` (constant rate), ``curve`` (piecewise-linear rate), ``trace`` (CSV)."""

    kind: str = "poisson"
    rate: float = 0.0  # poisson: chats per second (before ``scale``)
    points: tuple[tuple[float, float], ...] = ()  # curve: (time s, chats/s), linear in between
    path: str | None = None  # trace: CSV file with a ``time`` column (absolute after loading)
    scale: float = 1.0  # multiplies the rate (poisson/curve): a load factor for sweeps
    times: tuple[float, ...] = field(default=(), repr=False)  # trace: arrival times, sorted
    trace_exchanges: tuple[int | None, ...] = field(default=(), repr=False)  # trace: optional per-chat counts

    def rate_at(self, t: float) -> float:
        """Arrivals per second at scenario time ``t``."""
        if self.kind == "poisson":
            return self.rate * self.scale
        if self.kind == "curve":
            return _interp(self.points, t) * self.scale
        # trace: arrivals in the 60 s bin around t, per second
        lo = math.floor(t / 60.0) * 60.0
        return (bisect_left(self.times, lo + 60.0) - bisect_left(self.times, lo)) / 60.0

    def max_rate(self) -> float:
        """An upper bound of :meth:`rate_at` (the thinning envelope)."""
        if self.kind == "poisson":
            return self.rate * self.scale
        if self.kind == "curve":
            return max(r for _, r in self.points) * self.scale
        return math.inf

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "poisson":
            return {"kind": "poisson", "rate": self.rate, "scale": self.scale}
        if self.kind == "curve":
            return {"kind": "curve", "points": [list(p) for p in self.points], "scale": self.scale}
        return {"kind": "trace", "path": self.path}


def _interp(points: tuple[tuple[float, float], ...], t: float) -> float:
    """Piecewise-linear through ``points``, constant beyond the first and last point."""
    times = [p[0] for p in points]
    i = bisect_right(times, t)
    if i == 0:
        return points[0][1]
    if i == len(points):
        return points[-1][1]
    (t0, r0), (t1, r1) = points[i - 1], points[i]
    return r0 + (r1 - r0) * (t - t0) / (t1 - t0)


@dataclass(frozen=True)
class Users:
    arrivals: Arrivals
    think_time: Distribution = Exponential(30.0)  # user's time to answer an operator reply (s)
    exchanges: Distribution = Constant(3.0)  # operator replies before the user ends the chat (rounded, >= 1)
    patience: Distribution = Constant(math.inf)  # a queued user gives up after this long (s); inf = never

    def to_dict(self) -> dict[str, Any]:
        return {"arrivals": self.arrivals.to_dict(), "think_time": self.think_time.to_dict(),
                "exchanges": self.exchanges.to_dict(), "patience": _dist_dict(self.patience)}


@dataclass(frozen=True)
class Shift:
    """An on-shift window for some operators (0-based indexes)."""

    start: float
    end: float
    operators: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "operators": list(self.operators)}


@dataclass(frozen=True)
class Operators:
    count: int
    max_chats: int = 1
    handle_time: Distribution = Exponential(60.0)  # time to write one reply (s)
    unassign_probability: float = 0.0  # per handled message: hand the chat back instead of replying
    idle_probability: float = 0.0  # per handled message: stop responding for idle_duration first
    idle_duration: Distribution = Constant(600.0)
    shifts: tuple[Shift, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "max_chats": self.max_chats, "handle_time": self.handle_time.to_dict(),
                "unassign_probability": self.unassign_probability, "idle_probability": self.idle_probability,
                "idle_duration": self.idle_duration.to_dict(), "shifts": [s.to_dict() for s in self.shifts]}


@dataclass(frozen=True)
class PolicySpec:
    name: str = "exclude_last"
    mode: str = "pull"  # pull: operators ask; push: a waiting chat is offered to free operators
    fallback_after: float = 300.0  # exclude_last_fallback's T (s)
    poll_interval: float = 5.0  # how often an operator with free capacity asks again (push: re-dispatch)
    salt: int | None = None  # random policy: fixed salt; None = a fresh seeded salt per request

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "mode": self.mode, "fallback_after": self.fallback_after,
                               "poll_interval": self.poll_interval}
        if self.salt is not None:
            out["salt"] = self.salt
        return out


@dataclass(frozen=True)
class Jobs:
    idle_detection_interval: float = 60.0  # s between idle-detection runs; 0 = off
    idle_after: float = 300.0  # an operator silent this long is idle
    stuck_check_interval: float = 300.0  # s between stuck-chat checks; 0 = off
    stuck_after: float = 1800.0  # a chat assigned this long is stuck and released

    def to_dict(self) -> dict[str, Any]:
        return {"idle_detection_interval": self.idle_detection_interval, "idle_after": self.idle_after,
                "stuck_check_interval": self.stuck_check_interval, "stuck_after": self.stuck_after}


@dataclass(frozen=True)
class Scenario:
    """A validated scenario.  Build with :func:`load_scenario` / :func:`parse_scenario`."""

    name: str
    description: str
    duration: float  # scenario seconds
    seed: int
    users: Users
    operators: Operators
    policy: PolicySpec = PolicySpec()
    jobs: Jobs = Jobs()
    source: str = field(default="<dict>", compare=False)  # file it came from (for error messages)

    def rate_at(self, t: float) -> float:
        """Chat arrivals per second at scenario time ``t``."""
        return self.users.arrivals.rate_at(t)

    def operator_shifts(self, i: int) -> list[tuple[float, float]]:
        """On-shift windows of operator ``i`` (0-based), merged, clipped to ``[0, duration]``.

        Without shifts, or when no shift names the operator, it works the whole run.
        """
        if not 0 <= i < self.operators.count:
            raise ScenarioError(self.source, "operators", f"an operator index in 0..{self.operators.count - 1}, got {i}")
        own = sorted((s.start, s.end) for s in self.operators.shifts if i in s.operators)
        if not own:
            return [(0.0, float(self.duration))]
        merged: list[tuple[float, float]] = []
        for start, end in own:
            start, end = max(0.0, start), min(float(self.duration), end)
            if end <= start:
                continue
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def to_dict(self) -> dict[str, Any]:
        """Every field (defaults filled in) as plain TOML-like data; :func:`parse_scenario` round-trips it."""
        return {"name": self.name, "description": self.description, "duration": self.duration, "seed": self.seed,
                "users": self.users.to_dict(), "operators": self.operators.to_dict(),
                "policy": self.policy.to_dict(), "jobs": self.jobs.to_dict()}

    def with_overrides(self, changes: Mapping[str, Any]) -> "Scenario":
        """A re-validated copy with dotted fields replaced, e.g. ``{"operators.count": 4, "duration": 600}``.

        A distribution can be replaced whole (``{"operators.handle_time": 60}`` = constant)
        or by one parameter (``{"operators.handle_time.mean": 60}``).
        """
        data = self.to_dict()
        label = f"{self.source} (overrides: {', '.join(f'{k}={v!r}' for k, v in changes.items())})"
        for dotted, value in changes.items():
            parts = str(dotted).split(".")
            if not all(parts):
                raise ScenarioError(label, str(dotted), "a dotted field name like operators.count")
            node: Any = data
            for depth, key in enumerate(parts[:-1]):
                child = node.setdefault(key, {})  # an unknown section is rejected by validation below
                if not isinstance(child, dict):
                    raise ScenarioError(label, ".".join(parts[: depth + 1]),
                                        f"a table to override {dotted!r} inside; it is the value {child!r}")
                node = child
            node[parts[-1]] = copy.deepcopy(value)
            if parts[-2:] in (["arrivals", "rate"], ["arrivals", "points"], ["arrivals", "path"]):
                # switching the arrival process: the given key decides the kind
                node["kind"] = {"rate": "poisson", "points": "curve", "path": "trace"}[parts[-1]]
                for other in {"rate", "points", "path"} - {parts[-1]}:
                    node.pop(other, None)
                if parts[-1] == "path":
                    node.pop("scale", None)
        base = Path(self.source).parent if self.source != "<dict>" else None
        return parse_scenario(data, source=label, base_dir=base, default_name=self.name)


def _dist_dict(d: Distribution) -> Any:
    if isinstance(d, Constant) and math.isinf(d.value):
        return math.inf
    return d.to_dict()


# --------------------------------------------------------------------------- validation


class _Table:
    """A TOML table being read: pops keys, remembers the path, rejects leftovers."""

    def __init__(self, file: str, path: str, data: Any, valid: tuple[str, ...]) -> None:
        self.file, self.path, self.valid = file, path, valid
        if not isinstance(data, Mapping):
            raise ScenarioError(file, path or "(top level)", f"a table with keys {', '.join(valid)}, got {data!r}")
        unknown = [k for k in data if k not in valid]
        if unknown:
            raise ScenarioError(file, self.key(unknown[0]), f"no such key; valid keys{' in [' + path + ']' if path else ''}: "
                                f"{', '.join(valid)}")
        self.data = data

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, expected: str) -> ScenarioError:
        return ScenarioError(self.file, self.key(name), expected)

    def has(self, name: str) -> bool:
        return name in self.data

    def number(self, name: str, default: float | None = None, *, minimum: float = 0.0, strict: bool = False,
               maximum: float | None = None, allow_inf: bool = False) -> float:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        rng = f"a number {bound}" + (f" and <= {maximum:g}" if maximum is not None else "")
        if name not in self.data:
            if default is None:
                raise self.error(name, f"{rng} (required)")
            return default
        value = self.data[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(name, f"{rng}, got {value!r}")
        value = float(value)
        if math.isnan(value) or (math.isinf(value) and not allow_inf) or value < minimum or (strict and value == minimum) \
                or (maximum is not None and value > maximum):
            raise self.error(name, f"{rng}, got {value!r}")
        return value

    def integer(self, name: str, default: int | None = None, *, minimum: int = 0) -> int:
        if name not in self.data:
            if default is None:
                raise self.error(name, f"an integer >= {minimum} (required)")
            return default
        value = self.data[name]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(name, f"an integer >= {minimum}, got {value!r}")
        return value

    def text(self, name: str, default: str | None = None, *, choices: tuple[str, ...] | None = None) -> str:
        if name not in self.data:
            if default is None:
                raise self.error(name, "a string (required)" if not choices else f"one of {', '.join(choices)} (required)")
            return default
        value = self.data[name]
        if not isinstance(value, str):
            raise self.error(name, f"a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.error(name, f"one of {', '.join(choices)}, got {value!r}")
        return value

    def dist(self, name: str, default: Distribution, *, allow_inf: bool = False) -> Distribution:
        if name not in self.data:
            return default
        value = self.data[name]
        if allow_inf and isinstance(value, float) and math.isinf(value) and value > 0:
            return Constant(math.inf)
        try:
            return parse_distribution(value, self.key(name))
        except DistributionError as exc:
            raise ScenarioError(self.file, exc.field, exc.expected) from None

    def table(self, name: str, valid: tuple[str, ...], *, required: bool = False) -> "_Table":
        if name not in self.data and required:
            raise self.error(name, f"a table [{self.key(name)}] with keys {', '.join(valid)} (required)")
        return _Table(self.file, self.key(name), self.data.get(name, {}), valid)


_TOP = ("name", "description", "duration", "seed", "users", "operators", "policy", "jobs")
_USERS = ("arrivals", "think_time", "exchanges", "patience")
_ARRIVAL_KEYS = {"poisson": ("kind", "rate", "scale"), "curve": ("kind", "points", "scale"), "trace": ("kind", "path")}
_OPERATORS = ("count", "max_chats", "handle_time", "unassign_probability", "idle_probability", "idle_duration", "shifts")
_SHIFT = ("start", "end", "operators", "count")
_POLICY = ("name", "mode", "fallback_after", "poll_interval", "salt")
_JOBS = ("idle_detection_interval", "idle_after", "stuck_check_interval", "stuck_after")


def _arrivals(t: _Table, base_dir: Path | None) -> Arrivals:
    kind_raw = t.data.get("kind")
    if kind_raw is None:  # infer from the one key given
        given = [k for k in ("rate", "points", "path") if k in t.data]
        kind_raw = {"rate": "poisson", "points": "curve", "path": "trace"}[given[0]] if len(given) == 1 else None
    if kind_raw not in _ARRIVAL_KEYS:
        raise t.error("kind", f"one of poisson (with rate), curve (with points), trace (with path); got {kind_raw!r}")
    t = _Table(t.file, t.path, t.data, _ARRIVAL_KEYS[kind_raw])
    scale = t.number("scale", 1.0) if kind_raw != "trace" else 1.0
    if kind_raw == "poisson":
        return Arrivals("poisson", rate=t.number("rate", None), scale=scale)
    if kind_raw == "curve":
        raw = t.data.get("points")
        expected = "a list of at least 2 [time_s, chats_per_s] pairs with increasing times, e.g. [[0, 0.01], [3600, 0.05]]"
        if not isinstance(raw, list) or len(raw) < 2:
            raise t.error("points", f"{expected}; got {raw!r}")
        points: list[tuple[float, float]] = []
        for i, p in enumerate(raw):
            ok = isinstance(p, list) and len(p) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in p)
            if not ok:
                raise t.error(f"points[{i}]", f"[time_s, chats_per_s] with two finite numbers >= 0; got {p!r}")
            if points and p[0] <= points[-1][0]:
                raise t.error(f"points[{i}]", f"a time after {points[-1][0]:g} (times must increase); got {p[0]!r}")
            points.append((float(p[0]), float(p[1])))
        if max(r for _, r in points) <= 0:
            raise t.error("points", "at least one rate > 0")
        return Arrivals("curve", points=tuple(points), scale=scale)
    path_text = t.text("path")
    path = Path(path_text)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    times, exchanges = _read_trace(t, path)
    return Arrivals("trace", path=str(path), times=times, trace_exchanges=exchanges)


def _read_trace(t: _Table, path: Path) -> tuple[tuple[float, ...], tuple[int | None, ...]]:
    """A CSV with a ``time`` column (s) and optionally ``exchanges`` (int); other columns are ignored."""
    if not path.is_file():
        raise t.error("path", f"a CSV file with a 'time' column (relative to the scenario file); {path} does not exist")
    rows: list[tuple[float, int | None]] = []
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "time" not in reader.fieldnames:
            raise t.error("path", f"a CSV file with a header containing 'time'; {path} has columns {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                when = float(row["time"])
                ex = row.get("exchanges")
                n = int(ex) if ex not in (None, "") else None
            except (TypeError, ValueError):
                raise t.error("path", f"numbers in {path} line {line} (time, exchanges); got {dict(row)}") from None
            if not math.isfinite(when) or when < 0 or (n is not None and n < 1):
                raise t.error("path", f"time >= 0 and exchanges >= 1 in {path} line {line}; got {dict(row)}")
            rows.append((when, n))
    rows.sort(key=lambda r: r[0])
    return tuple(r[0] for r in rows), tuple(r[1] for r in rows)


def _shifts(ops: _Table, count: int) -> tuple[Shift, ...]:
    raw = ops.data.get("shifts", [])
    if not isinstance(raw, list):
        raise ops.error("shifts", f"an array of tables [[operators.shifts]] with keys {', '.join(_SHIFT)}; got {raw!r}")
    out: list[Shift] = []
    next_free = 0
    for i, item in enumerate(raw):
        t = _Table(ops.file, ops.key(f"shifts[{i}]"), item, _SHIFT)
        start = t.number("start", 0.0)
        end = t.number("end", math.inf, allow_inf=True)
        if end <= start:
            raise t.error("end", f"a time after start ({start:g}); got {end:g}")
        if t.has("operators") and t.has("count"):
            raise t.error("count", "either 'operators' (a list of indexes) or 'count', not both")
        if t.has("operators"):
            members = t.data["operators"]
            if not isinstance(members, list) or not members or not all(
                    isinstance(m, int) and not isinstance(m, bool) and 0 <= m < count for m in members):
                raise t.error("operators", f"a non-empty list of operator indexes in 0..{count - 1}; got {members!r}")
            who = tuple(sorted(set(members)))
        elif t.has("count"):
            n = t.integer("count", minimum=1)
            if next_free + n > count:
                raise t.error("count", f"at most {count - next_free} (operators.count = {count}, "
                                       f"{next_free} already taken by earlier 'count' shifts); got {n}")
            who = tuple(range(next_free, next_free + n))
            next_free += n
        else:
            who = tuple(range(count))
        out.append(Shift(start, end, who))
    return tuple(out)


def parse_scenario(data: Mapping[str, Any], *, source: str = "<dict>", base_dir: Path | None = None,
                   default_name: str = "scenario") -> Scenario:
    """Validate plain data (a parsed TOML document) into a :class:`Scenario`; raise :class:`ScenarioError`."""
    top = _Table(source, "", data, _TOP)
    name = top.text("name", default_name)
    description = top.text("description", "")
    duration = top.number("duration", None, strict=True)
    seed = top.integer("seed", 0)

    users_t = top.table("users", _USERS, required=True)
    arrivals = _arrivals(users_t.table("arrivals", ("kind", "rate", "points", "path", "scale"), required=True), base_dir)
    users = Users(
        arrivals=arrivals,
        think_time=users_t.dist("think_time", Users.think_time),
        exchanges=users_t.dist("exchanges", Users.exchanges),
        patience=users_t.dist("patience", Users.patience, allow_inf=True),
    )

    ops_t = top.table("operators", _OPERATORS, required=True)
    count = ops_t.integer("count", None, minimum=1)
    operators = Operators(
        count=count,
        max_chats=ops_t.integer("max_chats", 1, minimum=1),
        handle_time=ops_t.dist("handle_time", Operators.handle_time),
        unassign_probability=ops_t.number("unassign_probability", 0.0, maximum=1.0),
        idle_probability=ops_t.number("idle_probability", 0.0, maximum=1.0),
        idle_duration=ops_t.dist("idle_duration", Operators.idle_duration),
        shifts=_shifts(ops_t, count),
    )

    pol_t = top.table("policy", _POLICY)
    salt = None
    if pol_t.has("salt"):
        salt = pol_t.integer("salt", minimum=0)
    policy = PolicySpec(
        name=pol_t.text("name", "exclude_last", choices=POLICY_NAMES),
        mode=pol_t.text("mode", "pull", choices=("pull", "push")),
        fallback_after=pol_t.number("fallback_after", 300.0),
        poll_interval=pol_t.number("poll_interval", 5.0, strict=True),
        salt=salt,
    )

    jobs_t = top.table("jobs", _JOBS)
    jobs = Jobs(
        idle_detection_interval=jobs_t.number("idle_detection_interval", 60.0),
        idle_after=jobs_t.number("idle_after", 300.0, strict=True),
        stuck_check_interval=jobs_t.number("stuck_check_interval", 300.0),
        stuck_after=jobs_t.number("stuck_after", 1800.0, strict=True),
    )
    return Scenario(name, description, duration, seed, users, operators, policy, jobs, source=source)


# --------------------------------------------------------------------------- files


def scenario_dirs() -> list[Path]:
    """Where bare scenario names are looked up, in order: ./scenarios, the repository's, the installed package's."""
    dirs = [Path.cwd() / "scenarios", Path(__file__).resolve().parents[1] / "scenarios"]
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
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), "", f"valid TOML ({exc})") from None
    except OSError as exc:
        raise ScenarioError(str(path), "", f"a readable file ({exc.strerror})") from None
    return parse_scenario(data, source=str(path), base_dir=path.parent, default_name=path.stem)


#: One line per field for the README's scenario format table: (field, type/default, meaning).
FIELD_DOCS: tuple[tuple[str, str, str], ...] = (
    ("name", "string, default: file name", "scenario name in reports"),
    ("description", "string", "what the scenario is for"),
    ("duration", "number > 0 (required)", "simulated seconds"),
    ("seed", "integer >= 0, default 0", "default random seed"),
    ("users.arrivals.kind", "poisson, curve or trace", "inferred from rate / points / path when omitted"),
    ("users.arrivals.rate", "number >= 0", "poisson: chats per second"),
    ("users.arrivals.points", "[[t, rate], ...]", "curve: chats/s at time t, linear in between, flat outside"),
    ("users.arrivals.path", "string", "trace: CSV with a 'time' column (s) and optional 'exchanges'"),
    ("users.arrivals.scale", "number >= 0, default 1", "load factor applied to rate / points"),
    ("users.think_time", "distribution, default exponential mean 30", "user's time to answer an operator reply (s)"),
    ("users.exchanges", "distribution, default 3", "operator replies before the user ends the chat (rounded, >= 1)"),
    ("users.patience", "distribution or inf, default inf", "a user still queued this long after writing gives up (s)"),
    ("operators.count", "integer >= 1 (required)", "number of operators (ids 1..count; shifts use 0-based indexes)"),
    ("operators.max_chats", "integer >= 1, default 1", "chats an operator may hold at once"),
    ("operators.handle_time", "distribution, default exponential mean 60", "time to write one reply (s)"),
    ("operators.unassign_probability", "0..1, default 0", "per handled message: hand the chat back instead"),
    ("operators.idle_probability", "0..1, default 0", "per handled message: stop responding first"),
    ("operators.idle_duration", "distribution, default 600", "how long an idle operator stays silent (s)"),
    ("operators.shifts", "array of tables: start, end, operators (list) or count", "on-shift windows; operators in no shift work all run"),
    ("policy.name", "policy name, default exclude_last", "default policy (chatlab --policy overrides)"),
    ("policy.mode", "pull or push, default pull", "operators ask / waiting chats are offered to free operators"),
    ("policy.fallback_after", "number >= 0, default 300", "exclude_last_fallback's T (s)"),
    ("policy.poll_interval", "number > 0, default 5", "how often an operator with a free slot asks again; push: re-dispatch period (s)"),
    ("policy.salt", "integer >= 0, optional", "random policy: fixed salt (default: a seeded salt per request)"),
    ("jobs.idle_detection_interval", "number >= 0, default 60", "s between idle-detection runs (0 = off)"),
    ("jobs.idle_after", "number > 0, default 300", "silence after which an operator is idle (s)"),
    ("jobs.stuck_check_interval", "number >= 0, default 300", "s between stuck-chat releases (0 = off)"),
    ("jobs.stuck_after", "number > 0, default 1800", "assigned this long = stuck (s)"),
)

