"""Reading a scenario: plain TOML data validated into :class:`~sim.scenario.spec.Scenario`.

Validation is strict because a typo in a scenario silently changes an experiment: every
wrong value raises :class:`~sim.errors.ScenarioError` naming the file, the dotted field
(``operators.handle_time.sd``) and what was expected, and an unknown key is rejected with
the list of valid keys.

Limits (:data:`MAX_DURATION_S`, :data:`MAX_OPERATORS`, :data:`MAX_RATE`, :data:`MAX_TABS`,
:data:`MIN_INTERVAL_S`) reject values that are valid numbers but would make a run silently
wrong or endless (``duration = 1e300``, a million chats a second, a poll every nanosecond).
A trace CSV must be UTF-8 (a byte-order mark, as Excel writes, is fine), have at least one
row and list its times in order (a trace out of order is more likely a broken export than a
shuffled one, so it is rejected, naming the line).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sim.distributions import Constant, Distribution, parse_distribution
from sim.errors import DistributionError, ScenarioError
from sim.policies import POLICY_NAMES
from sim.routing import MAX_ROUTING_S
from sim.scenario.floor import read_groups, read_sla_targets, read_topics
from sim.scenario.spec import Arrivals, Jobs, Operators, PolicySpec, Scenario, Shift, Users

#: The longest scenario: one year of simulated seconds.
MAX_DURATION_S = 365 * 86400.0
#: The most operators on a floor (all groups together).
MAX_OPERATORS = 100_000
#: The highest arrival rate (chats per second, after ``scale``; a curve's highest point).
MAX_RATE = 1000.0
#: The most assignment requests (tabs) one operator's client makes at once.
MAX_TABS = 100
#: The shortest poll / job interval (s): anything shorter only makes a run endless.
MIN_INTERVAL_S = 0.01


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
               maximum: float | None = None, allow_inf: bool = False, limit: float | None = None) -> float:
        """A number in range; ``limit``: a sanity ceiling, named only when it is what the value breaks."""
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
        if limit is not None and value > limit:
            shown = f"{limit:,.0f}" if float(limit).is_integer() else f"{limit:g}"
            raise self.error(name, f"at most {shown} (the lab's limit), got {value!r}")
        return value

    def integer(self, name: str, default: int | None = None, *, minimum: int = 0, limit: int | None = None) -> int:
        """An integer >= ``minimum``; ``limit``: a ceiling, named only when it is what the value breaks."""
        rng = f"an integer >= {minimum}"
        if name not in self.data:
            if default is None:
                raise self.error(name, f"{rng} (required)")
            return default
        value = self.data[name]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(name, f"{rng}, got {value!r}")
        if limit is not None and value > limit:
            raise self.error(name, f"an integer from {minimum} to {limit:,} (the lab's limit), got {value!r}")
        return value

    def interval(self, name: str, default: float, *, off: bool = False) -> float:
        """A period in seconds >= :data:`MIN_INTERVAL_S` (``off``: 0 switches it off; else it must be > 0)."""
        value = self.number(name, default, strict=not off)
        if value < MIN_INTERVAL_S and not (off and value == 0):
            what = f"0 (off) or a number >= {MIN_INTERVAL_S:g}" if off else f"a number >= {MIN_INTERVAL_S:g}"
            raise self.error(name, f"{what} (seconds; shorter only makes the run endless), got {value!r}")
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


_TOP = ("name", "description", "duration", "seed", "warmup", "users", "operators", "policy", "jobs")
_USERS = ("arrivals", "think_time", "exchanges", "patience", "topics", "returning")
_ARRIVAL_KEYS = {"poisson": ("kind", "rate", "scale"), "curve": ("kind", "points", "scale"), "trace": ("kind", "path")}
_OPERATORS = ("count", "max_chats", "handle_time", "unassign_probability", "idle_probability", "idle_duration", "shifts",
              "groups", "tabs")
_SHIFT = ("start", "end", "operators", "count")
_POLICY = ("name", "mode", "fallback_after", "poll_interval", "salt", "relax_after", "order", "sla_targets",
           "sticky_for", "fair_limit", "fair_window")
_JOBS = ("idle_detection_interval", "idle_after", "stuck_check_interval", "stuck_after", "reassign_after",
         "reassign_check_interval")


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
        rate = t.number("rate", None, limit=MAX_RATE)
        if rate * scale > MAX_RATE:
            raise t.error("scale", f"a rate x scale of at most {MAX_RATE:,.0f} chats/s; got {rate:g} x {scale:g}")
        return Arrivals("poisson", rate=rate, scale=scale)
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
        if max(r for _, r in points) * scale > MAX_RATE:
            raise t.error("points", f"rates x scale of at most {MAX_RATE:,.0f} chats/s; the highest is "
                                    f"{max(r for _, r in points) * scale:g}")
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
    try:
        text = path.read_bytes().decode("utf-8-sig")  # utf-8-sig: Excel's CSV starts with a byte-order mark
    except UnicodeDecodeError as exc:
        raise t.error("path", f"a UTF-8 CSV file; {path} has a byte (0x{exc.object[exc.start]:02x} at offset "
                              f"{exc.start}) that is not UTF-8 (save it as 'CSV UTF-8')") from None
    except OSError as exc:
        raise t.error("path", f"a readable CSV file; {path}: {exc.strerror}") from None
    rows: list[tuple[float, int | None]] = []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None or "time" not in [f.strip() for f in reader.fieldnames]:
        raise t.error("path", f"a CSV file with a header containing 'time'; {path} has columns {reader.fieldnames}")
    reader.fieldnames = [f.strip() for f in reader.fieldnames]
    for line, row in enumerate(reader, start=2):
        try:
            when = float(row["time"])
            ex = row.get("exchanges")
            n = int(ex) if ex not in (None, "") else None
        except (TypeError, ValueError):
            raise t.error("path", f"numbers in {path} line {line} (time, exchanges); got {dict(row)}") from None
        if not math.isfinite(when) or when < 0 or (n is not None and n < 1):
            raise t.error("path", f"time >= 0 and exchanges >= 1 in {path} line {line}; got {dict(row)}")
        if rows and when < rows[-1][0]:
            raise t.error("path", f"times in increasing order in {path}; line {line} has time {when:g}, before "
                                  f"the previous line's {rows[-1][0]:g} (sort the file by time)")
        rows.append((when, n))
    if not rows:
        raise t.error("path", f"a CSV file with at least one arrival; {path} has a header only")
    return tuple(r[0] for r in rows), tuple(r[1] for r in rows)


def exchanges_dist(t: _Table, name: str, default: Distribution) -> Distribution:
    """``exchanges``: a distribution of replies per chat with a mean of at least 1 (a constant 0 would be
    silently read as 1)."""
    dist = t.dist(name, default)
    mean = dist.mean
    if not (math.isfinite(mean) and mean >= 1):
        raise t.error(name, f"operator replies per chat: a number or distribution with mean >= 1, got mean {mean:g}")
    return dist


def _shifts(ops: _Table, count: int) -> tuple[Shift, ...]:
    raw = ops.data.get("shifts", [])
    if not isinstance(raw, list):
        raise ops.error("shifts", f"an array of tables [[{ops.key('shifts')}]] with keys {', '.join(_SHIFT)}; got {raw!r}")
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


def _warmup(top: _Table, duration: float) -> float | str:
    """``warmup``: seconds >= 0 and < duration, or "auto" (MSER-5 per run)."""
    value = top.data.get("warmup", 0.0)
    if value == "auto":
        return "auto"
    expected = f'a number of seconds >= 0 and < duration ({duration:g}), or "auto"'
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < duration):
        raise top.error("warmup", f"{expected}, got {value!r}")
    return float(value)


def parse_scenario(data: Mapping[str, Any], *, source: str = "<dict>", base_dir: Path | None = None,
                   default_name: str = "scenario") -> Scenario:
    """Validate plain data (a parsed TOML document) into a :class:`Scenario`; raise :class:`ScenarioError`."""
    top = _Table(source, "", data, _TOP)
    name = top.text("name", default_name)
    description = top.text("description", "")
    duration = top.number("duration", None, strict=True, limit=MAX_DURATION_S)
    seed = top.integer("seed", 0, limit=2**32 - 1)
    warmup = _warmup(top, duration)

    users_t = top.table("users", _USERS, required=True)
    arrivals = _arrivals(users_t.table("arrivals", ("kind", "rate", "points", "path", "scale"), required=True), base_dir)
    users = Users(
        arrivals=arrivals,
        think_time=users_t.dist("think_time", Users.think_time),
        exchanges=exchanges_dist(users_t, "exchanges", Users.exchanges),
        patience=users_t.dist("patience", Users.patience, allow_inf=True),
        returning=users_t.number("returning", 0.0, maximum=1.0),
    )

    ops_t = top.table("operators", _OPERATORS, required=True)
    grouped = ops_t.has("groups")
    count = 0 if grouped else ops_t.integer("count", None, minimum=1, limit=MAX_OPERATORS)
    operators = Operators(
        count=count,
        max_chats=ops_t.integer("max_chats", 1, minimum=1),
        handle_time=ops_t.dist("handle_time", Operators.handle_time),
        unassign_probability=ops_t.number("unassign_probability", 0.0, maximum=1.0),
        idle_probability=ops_t.number("idle_probability", 0.0, maximum=1.0),
        idle_duration=ops_t.dist("idle_duration", Operators.idle_duration),
        shifts=() if grouped else _shifts(ops_t, count),
        tabs=ops_t.integer("tabs", 1, minimum=1, limit=MAX_TABS),
    )
    if grouped:
        operators = read_groups(ops_t, operators, _shifts)
        if operators.count > MAX_OPERATORS:
            raise ops_t.error("groups", f"at most {MAX_OPERATORS:,} operators in all groups together; "
                                        f"got {operators.count:,}")
    if users_t.has("topics"):
        users = read_topics(users_t, users, operators.skills)

    pol_t = top.table("policy", _POLICY)
    salt = None
    if pol_t.has("salt"):
        salt = pol_t.integer("salt", minimum=0)
    policy = PolicySpec(
        name=pol_t.text("name", "exclude_last", choices=POLICY_NAMES),
        mode=pol_t.text("mode", "pull", choices=("pull", "push")),
        fallback_after=pol_t.number("fallback_after", 300.0),
        poll_interval=pol_t.interval("poll_interval", 5.0),
        salt=salt,
        relax_after=pol_t.number("relax_after", None) if pol_t.has("relax_after") else None,
        order=pol_t.text("order", "priority", choices=("priority", "sla")),
        sticky_for=pol_t.number("sticky_for", None, maximum=MAX_ROUTING_S) if pol_t.has("sticky_for") else None,
        fair_limit=pol_t.integer("fair_limit", None, minimum=1) if pol_t.has("fair_limit") else None,
        fair_window=pol_t.number("fair_window", 3600.0, strict=True, maximum=MAX_ROUTING_S),
    )
    if policy.order == "sla" or pol_t.has("sla_targets"):  # kept with order = "priority" (unused then)
        policy = dataclasses.replace(policy, sla_targets=read_sla_targets(pol_t, {t.priority for t in users.topics}))

    jobs_t = top.table("jobs", _JOBS)
    jobs = Jobs(
        idle_detection_interval=jobs_t.interval("idle_detection_interval", 60.0, off=True),
        idle_after=jobs_t.number("idle_after", 300.0, strict=True),
        stuck_check_interval=jobs_t.interval("stuck_check_interval", 300.0, off=True),
        stuck_after=jobs_t.number("stuck_after", 1800.0, strict=True),
        reassign_after=jobs_t.number("reassign_after", None, strict=True) if jobs_t.has("reassign_after") else None,
        reassign_check_interval=jobs_t.interval("reassign_check_interval", 10.0),
    )
    return Scenario(name, description, duration, seed, users, operators, policy, jobs, source=source, warmup=warmup)

