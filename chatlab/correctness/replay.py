"""Trace replay: apply a simulation's event log to the SQL functions and list every decision
the database made differently.

Why: the simulation's assignment decisions come from ``sim/policies.py``; the real system's
from ``assign_chat_to_operator``.  Feeding the database exactly what happened in a run (same
times, same order) and asking it to decide every ``assign`` shows whether the two agree on
real traffic, not only on the hand-made states of the unit tests.

Mapping of log rows to SQL calls (the DB clock is pinned to the row's time first):

==================  ==================================================================
log row             SQL call
==================  ==================================================================
operator_online     ``set_operator_online(op, true)``
operator_offline    ``set_operator_online(op, false)`` (skipped if already taken offline)
user_message        ``real_user_message`` (new chat, by its user, with its topic, when ``from_state``
                    is empty)
assign              ``assign_chat_to_operator(op, policy, fallback_after, salt, <routing>)``
                    (the run's routing rules); the chosen chat is compared with the log's
==================  ==================================================================

Before the first row the floor is set up from the log's attrs as the model set it up: the
topics (skill, class, weight), every operator offline with its capacity and skills; the routing rules
come from the attrs too.

==================  ==================================================================
log row             SQL call
==================  ==================================================================
operator_reply      ``operator_message``
unassign            ``unassign_chat``; with reason ``operator_offline`` it is part of a
                    log-out: ``set_operator_online(op, false)`` once for all its chats
idle_release        ``set_operator_online(op, false)`` once per operator and time
stuck_release       ``release_and_reassign_chat(chat, reason)`` (also the no-answer timeout's,
                    reason ``no_answer``: the same change)
end                 ``end_chat(chat, reason)``
operator_idle/      nothing (ground truth of the simulation; the database cannot see it)
operator_active
==================  ==================================================================

Idle release: the model calls ``release_idle_operator_chats(idle_after)``, which picks the
operators by ``last_activity_at``.  That value is fed by heartbeats (``touch_operator``),
which the event log does not contain, so calling the same function on replay would pick
different operators.  The log does say *which* operator was released, so replay takes that
operator offline with ``set_operator_online(op, false)``: the same state change (its chats
-> ``waiting_assignment``, ``last_operator_id`` := op, ``waiting_since`` kept, operator
offline); only the history's reason text differs (``operator_offline`` instead of ``idle``).

Exactness: ``legacy``, ``exclude_last``, ``exclude_last_fallback``, ``round_robin`` and
``least_loaded`` depend only on what the log shows, so replay is exact for them.
``longest_idle`` orders operators by ``last_activity_at`` (heartbeats missing: not exact,
a warning is reported).  ``random`` draws a salt per call in the model that the log does not
carry: replay supports it only for a run with a fixed salt (scenario ``policy.salt``), which the
run attrs do not record either, so it is given with ``--salt`` (exact then).

On a disagreement the database has already committed its own choice and no API call can
assign a *given* chat, so the simulation's choice cannot be forced: replay records the
disagreement and stops (every later decision would start from a different state).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sim.errors import ChatLabError

#: Policies whose decisions depend only on facts the event log records.
EXACT_POLICIES = ("legacy", "exclude_last", "exclude_last_fallback", "round_robin", "least_loaded")


class ReplayError(ChatLabError):
    """A log or option replay cannot work with (one line for the CLI)."""


@dataclass(frozen=True)
class Disagreement:
    """One point where the database did not do what the simulation did."""

    time: float
    operator_id: int | None  # the simulation's operator id
    sim_chat: int | None  # the simulation's chat id
    db_chat: int | None  # the database's choice, as a simulation chat id when known
    detail: str = ""

    def __str__(self) -> str:
        op = "-" if self.operator_id is None else self.operator_id
        text = f"t={self.time:.3f}s operator {op}: simulation chose chat {self.sim_chat}, database chose {self.db_chat}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass
class ReplayResult:
    """What a replay did: counts, every disagreement, and notes on exactness."""

    policy: str
    events: int = 0  # log rows in total
    applied: int = 0  # log rows replayed (all when no disagreement stopped it)
    calls: int = 0  # SQL function calls made
    decisions: int = 0  # assign rows compared
    disagreements: list[Disagreement] = field(default_factory=list)
    state_mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stopped: bool = False

    @property
    def ok(self) -> bool:
        return not self.disagreements and not self.state_mismatches

    def summary(self, max_report: int = 10) -> str:
        lines = [
            f"policy {self.policy}: {self.applied}/{self.events} events applied, {self.calls} SQL calls, "
            f"{self.decisions} decisions compared, {len(self.disagreements)} disagreement(s), "
            f"{len(self.state_mismatches)} final-state mismatch(es)"
        ]
        lines += [f"note: {n}" for n in self.notes]
        for d in self.disagreements[:max_report]:
            lines.append(f"disagreement: {d}")
        for m in self.state_mismatches[:max_report]:
            lines.append(f"state mismatch: {m}")
        if self.stopped:
            lines.append("replay stopped at the first disagreement (the simulation's choice cannot be forced)")
        return "\n".join(lines)


# --------------------------------------------------------------------------- loading

def load_replay_log(path: str | Path) -> pd.DataFrame:
    """The event log at ``path`` (a log file or a run report directory), attrs included."""
    from sim.errors import InvalidEventLog
    from sim.eventlog import load_log, run_log_path

    path = Path(path)
    try:
        log, _ = load_log(run_log_path(path))
    except InvalidEventLog as exc:
        raise ReplayError(str(exc)) from None
    if not len(log):
        raise ReplayError(f"{path}: the event log is empty")
    return log


def resolve_policy(log: pd.DataFrame, policy: str | None, salt: int | None = None) -> tuple[str, float, int, list[str]]:
    """(policy name, fallback_after, salt, notes) for replaying ``log``; ``policy`` overrides the log's.

    ``salt``: the run's fixed salt (scenario ``policy.salt``) for ``random``; the run attrs do not
    record it, and without a fixed salt the model drew one per call, which no log shows.
    """
    from sim.policies import make_policy

    attrs = log.attrs
    name = policy or attrs.get("policy")
    if not name:
        raise ReplayError("the event log does not name its policy (no attrs/run.json): give --policy")
    params = attrs.get("policy_params") or {}
    if isinstance(params, str):
        params = json.loads(params)
    own = {k: v for k, v in params.items() if k in ("fallback_after",)}  # the routing rules: attrs
    pol = make_policy(str(name), **(own if name == attrs.get("policy") else {}))
    fallback = float(pol.params.get("fallback_after", 300.0))
    notes: list[str] = []
    if salt is None:
        salt = params.get("salt", attrs.get("salt"))
    if salt is not None and (isinstance(salt, bool) or not isinstance(salt, int) or salt < 0):
        raise ReplayError(f"salt must be an integer >= 0, got {salt!r}")
    if pol.name == "random" and salt is None:
        raise ReplayError("policy 'random': the event log does not carry the per-call salts; replay supports "
                          "random only for a run with a fixed salt (scenario policy.salt), given with --salt")
    if pol.name == "longest_idle":
        notes.append("longest_idle orders by last_activity_at, which heartbeats (not in the log) update: "
                     "decisions may differ without a bug")
    return pol.name, fallback, int(salt or 0), notes


# --------------------------------------------------------------------------- replay

def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _str(value: Any) -> str | None:
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def replay_log(log: pd.DataFrame, db: Any, *, policy: str | None = None, salt: int | None = None,
               progress: Callable[[int], None] | None = None) -> ReplayResult:
    """Apply ``log`` to the fresh schema behind ``db`` (a :class:`chatlab.db.client.ChatDB`).

    ``progress(n)`` is called with the number of rows done since the last call.
    """
    from sim.errors import ChatLabError

    name, fallback, salt, notes = resolve_policy(log, policy, salt)
    result = ReplayResult(policy=name, events=len(log), notes=notes)
    attrs = log.attrs
    max_chats = int(attrs.get("max_chats") or 1)
    capacity, skills = attrs.get("operator_max_chats") or {}, attrs.get("operator_skills") or {}
    routing = attrs.get("routing") or {}
    rules = (routing.get("relax_after"), routing.get("sla_targets"), routing.get("sticky_for"),
             routing.get("fair_limit"), routing.get("fair_window", 3600.0))
    sim_ops = sorted({int(o) for o in (attrs.get("operators") or [])}
                     | {int(o) for o in log["operator_id"].dropna().unique()})
    ops: dict[int, int] = {}  # sim operator id -> db operator id
    chats: dict[int, int] = {}  # sim chat id -> db chat id
    back: dict[int, int] = {}  # db chat id -> sim chat id
    online: dict[int, bool] = {}
    offline_at: set[tuple[float, int]] = set()  # (time, op) already taken offline by a log-out/idle group

    def call(fn: Callable[..., Any], *args: Any) -> Any:
        result.calls += 1
        return fn(*args)

    db.set_clock(0.0)
    for name_, spec in (attrs.get("topics") or {}).items():  # the floor, as the model set it up at time 0
        call(db.define_topic, name_, spec.get("skill"), int(spec.get("priority") or 0), int(spec.get("weight") or 1))
    for op in sim_ops:  # the model creates all operators offline at time 0
        ops[op] = call(db.create_operator, f"op{op}", int(capacity.get(str(op), max_chats)), False,
                       list(skills.get(str(op), [])))
        online[op] = False

    def go_offline(t: float, op: int) -> None:
        if online.get(op):
            call(db.set_operator_online, ops[op], False)
            online[op] = False
            offline_at.add((t, op))

    clock: float | None = 0.0
    rows = log[["time", "chat_id", "operator_id", "event", "from_state", "reason", "topic", "user_id"]].itertuples(
        index=False)
    for i, (t, chat, op, event, from_state, reason, topic, user) in enumerate(rows):
        t, chat, op, event, reason = float(t), _int(chat), _int(op), str(event), _str(reason)
        if t != clock:
            db.set_clock(t)
            clock = t
        try:
            if event == "operator_online":
                call(db.set_operator_online, ops[op], True)
                online[op] = True
            elif event == "operator_offline":
                go_offline(t, op)
            elif event in ("operator_idle", "operator_active"):
                pass
            elif event == "user_message":
                if _str(from_state) is None:
                    new = call(db.real_user_message, _int(user) or chat, "message", None, _str(topic))
                    chats[chat], back[new] = new, chat
                else:
                    call(db.real_user_message, _int(user) or chat, "message", chats[chat])
            elif event == "assign":
                result.decisions += 1
                got = call(db.assign_chat_to_operator, ops[op], name, fallback, salt, *rules)
                if got != chats[chat]:
                    result.disagreements.append(Disagreement(t, op, chat, back.get(got, got)))
                    result.stopped = True
                    break
            elif event == "operator_reply":
                call(db.operator_message, ops[op], chats[chat], "answer")
            elif event == "unassign":
                if reason == "operator_offline":
                    go_offline(t, op)
                else:
                    call(db.unassign_chat, ops[op], chats[chat])
            elif event == "idle_release":
                go_offline(t, op)
            elif event == "stuck_release":
                call(db.release_and_reassign_chat, chats[chat], reason or "stuck_timeout")
            elif event == "end":
                call(db.end_chat, chats[chat], reason or "resolved")
            else:
                raise ReplayError(f"event log row {i}: unknown event {event!r}")
        except ReplayError:
            raise
        except ChatLabError as exc:  # the database refused a call the simulation made
            result.disagreements.append(Disagreement(t, op, chat, None, f"{event}: database refused: {exc}"))
            result.stopped = True
            break
        except KeyError as exc:
            raise ReplayError(f"event log row {i} ({event} at t={t}): refers to unknown id {exc} "
                              "(not a complete simulation log?)") from None
        result.applied += 1
        if progress is not None and (i + 1) % 500 == 0:
            progress(500)
    if progress is not None:
        progress(result.applied % 500)
    if not result.stopped:
        result.state_mismatches = compare_final_states(log, db, chats)
    return result


def compare_final_states(log: pd.DataFrame, db: Any, chats: dict[int, int]) -> list[str]:
    """Each chat's last state in the log vs its state in the database."""
    chat_rows = log[log["chat_id"].notna()]
    last = chat_rows.groupby("chat_id", observed=True)["to_state"].last()
    db_state = {int(r["id"]): str(r["chat_state"]) for r in db.chats()}
    out = []
    for sim_chat, state in last.items():
        got = db_state.get(chats.get(int(sim_chat), -1))
        if got != str(state):
            out.append(f"chat {int(sim_chat)}: simulation ends in {state}, database in {got}")
    return out


def replay_path(path: str | Path, *, policy: str | None = None, salt: int | None = None, database_url: str | None = None,
                schema: str | None = None, progress: bool = True) -> ReplayResult:
    """Load the log at ``path``, replay it on a fresh schema (dropped afterwards), return the result.

    Server: ``database_url``, else ``$DATABASE_URL``, else a temporary embedded server.
    """
    from chatlab.db.migrate import check_schema, drop_schema, migrate
    from chatlab.db.server import session_database

    log = load_replay_log(path)
    resolve_policy(log, policy, salt)  # bad policy / random without salt -> error before any server starts
    schema = check_schema(schema or f"replay_{uuid.uuid4().hex[:12]}")
    if schema == "public":
        raise ReplayError("refusing to replay into schema 'public' (it is dropped afterwards)")
    with session_database(database_url) as url:
        _require_new_schema(url, schema)
        migrate(url, schema)
        try:
            from tqdm import tqdm

            from chatlab.db.client import ChatDB

            with ChatDB(url, schema, application_name="chatlab-replay") as db, \
                    tqdm(total=len(log), unit="event", desc="replay", disable=not progress, leave=False) as bar:
                return replay_log(log, db, policy=policy, salt=salt, progress=bar.update)
        finally:
            drop_schema(url, schema)
    raise AssertionError("unreachable")  # pragma: no cover


def _require_new_schema(url: str, schema: str) -> None:
    """Replay needs an empty schema and drops it afterwards: never reuse an existing one."""
    import psycopg

    from chatlab.db.errors import DatabaseUnavailable
    from chatlab.db.queries import query

    try:
        with psycopg.connect(url) as conn:
            exists = conn.execute(query("schema_exists"), {"schema": schema}).fetchone()
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to the database: {' '.join(str(exc).split())}") from None
    if exists:
        raise ReplayError(f"schema {schema!r} already exists; replay needs a new one (it drops it afterwards)")
