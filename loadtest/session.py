"""One load test from start to finish: database, schema, Locust, event log, results.

``chatlab loadtest`` and ``chatlab compare-real`` both call :func:`run_load_test` with the
:class:`~loadtest.settings.LoadTestSettings` that :func:`loadtest.settings.plan` validated.
The steps, each bounded and each undone on the way out:

1. the database: the settings' URL (``--database-url`` / ``DATABASE_URL``) or a temporary
   embedded server that is stopped and deleted afterwards;
2. a fresh, uniquely named schema, migrated, with the scenario's operators seeded
   (offline: each Locust ``Operator`` logs in when its shift starts); in push mode Locust's
   process also runs the dispatcher (``loadtest/listeners.py``);
3. Locust in a child process (never in this one: psycopg is imported here, see
   ``loadtest/locustproc.py``), headless or with the loopback-only web UI, killed if it
   overruns its run time by more than a grace period;
4. the history tables read back as the event log (``chatlab.db.history``), wall time
   mapped to scenario time; the history checks; ``loadtest.json`` written beside Locust's
   CSV files (what the report's load-test section is built from);
5. the schema dropped (unless ``keep_schema``), the server stopped.

The report itself is the report layer's job (``chatlab.report``): this module returns data.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import uuid
from collections.abc import Callable
from functools import partial
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from chatlab.db.clock import EPOCH
from chatlab.db.seedlog import integrity, to_event_log
from loadtest.locustproc import ROOT, LocustResult, run_locust, stop_process
from loadtest.plan import pool_limit
from loadtest.settings import CONFIG_ENV, START_WAIT_S, LoadTestSettings, LoadTestUsageError
from loadtest.target import Target, TargetError
from loadtest.target_client import TargetDB
from loadtest.usererrors import USER_ERROR_EXIT
from sim.errors import ChatLabError

LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
#: Seconds Locust may overrun its run time before it is killed (start-up + --stop-timeout).
GRACE_S = 45.0
#: Arrivals released later than this (scenario s) are worth a note in the report.
LATE_NOTE_S = 30.0
#: The results file a load test leaves in its output directory.
RESULTS_FILE = "loadtest.json"


class LoadTestFailed(ChatLabError):
    """The load test ran but produced nothing usable (Locust crashed, no events recorded)."""


@dataclass
class LoadTestOutcome:
    """What a finished load test produced."""

    log: pd.DataFrame
    locust: LocustResult
    settings: LoadTestSettings  # redacted: no connection details
    run_info: dict[str, Any]
    schema: str
    wall_s: float
    integrity: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def workers_lost(self) -> list[dict[str, Any]]:
        """Locust workers the master lost mid-run (``loadtest/workerwatch.py``); empty when none."""
        return workers_lost(self.run_info)

    @property
    def duration(self) -> float:
        """Scenario seconds covered."""
        return self.settings.duration

    def results(self) -> dict[str, Any]:
        """The contents of ``loadtest.json``: Locust totals, history checks, notes, the run's counters."""
        lc, wall = self.locust, float(self.settings.run_time_wall_s)
        return {
            "scenario_duration_s": self.duration,
            "time_scale": self.settings.time_scale,
            "run_time_wall_s": wall,
            "total_wall_s": self.wall_s,
            "locust": {"requests": lc.requests, "failures": lc.failures,
                       "requests_per_s": lc.requests / wall if wall else None, "returncode": lc.returncode,
                       "stats": [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                                  for k, v in row.items()} for row in lc.table()]},
            "integrity": self.integrity,
            "notes": self.notes,
            "users": {"operators": len(self.settings.operators), "real_user_pool_max": self.settings.user_pool},
            "run_info": self.run_info,
            "workers_lost": self.workers_lost,
        }


def schema_name(scenario: str, policy: str) -> str:
    """A fresh schema per run: ``lt_<scenario>_<policy>_<random>`` (lower case, <= 63 bytes)."""
    stem = re.sub(r"[^a-z0-9]+", "_", f"{Path(scenario).stem}_{policy}".lower()).strip("_")[:40]
    return f"lt_{stem}_{uuid.uuid4().hex[:10]}"


def run_load_test(settings: LoadTestSettings, *, on_tick: Callable[[float], None] | None = None) -> LoadTestOutcome:
    """Run one bounded load test; return its event log (scenario time), Locust's stats and the checks."""
    from chatlab.db.client import ChatDB
    from chatlab.db.migrate import drop_schema, install_files, migrate
    from chatlab.db.seedtables import check_tables, read_database, table_columns_of
    from chatlab.db.server import session_database
    from loadtest.target import probe

    scenario = settings.load_scenario()
    target = settings.load_target()
    out_dir = Path(settings.out_dir)
    pool = settings.users if settings.users is not None else pool_limit(scenario, settings.duration,
                                                                        workers=settings.workers)
    started = time.monotonic()
    notes = []
    if scenario.policy.mode == "push" and target is not None:
        notes.append(f"target {target.name}: the scenario's push mode is played as pull (the target's own "
                     "assign runs when its operators ask; the lab's dispatcher is for the lab's SQL)")
    # per process: the wake-up line and a few short-lived connections; the master: the dispatcher's two
    n_ops, reserved = len(settings.operators), 4 * settings.workers + 3
    per_op = 1 + scenario.operators.tabs  # a worker connection and one per tab
    with session_database(settings.database_url, prefix="chatlab-lt-pg-") as dsn:
        schema = schema_name(settings.scenario, settings.policy)
        try:
            if target is None:
                migrate(dsn, schema)
            else:  # an outside system: its own SQL files, every flow probed once (rolled back)
                try:
                    install_files(dsn, schema, list(target.schema_files))
                    check_tables(table_columns_of(dsn, schema), f"target {target.name} (schema {schema!r})")
                    probe(target, dsn, schema)
                except ChatLabError:
                    drop_schema(dsn, schema)
                    raise
        except TargetError:
            raise
        except ChatLabError as exc:  # e.g. cannot connect: one line, whatever the driver printed
            raise LoadTestFailed(" ".join(str(exc).split())) from None
        if target is not None:
            notes += target_notes(target, scenario)
        try:
            setup = ChatDB if target is None else partial(TargetDB, target=target)
            with setup(dsn, schema, application_name="chatlab-loadtest-setup") as db:
                # each operator holds a worker connection and one per tab (poller), each real user
                # one, plus the housekeeper and a few short-lived ones: stay inside max_connections
                spare = db.connection_budget() - per_op * n_ops - reserved
                if spare < 2:
                    raise LoadTestUsageError(
                        f"the server allows too few connections for {n_ops} operators "
                        f"(need {per_op * n_ops + reserved + 2}, have {spare + per_op * n_ops + reserved}); "
                        "raise max_connections or use fewer operators")
                if pool > spare:
                    notes.append(f"real-user pool capped at {spare} by the server's max_connections (wanted {pool})")
                    pool = spare
                seed_floor(db, settings, scenario)
            run = settings.for_server(dsn, schema, pool)
            out_dir.mkdir(parents=True, exist_ok=True)
            config_path = run.write(out_dir / "loadtest_config.json")
            try:
                result = _run_locust(run, config_path, on_tick)
            finally:
                config_path.unlink(missing_ok=True)  # it holds the database URL (maybe a password)
            info = _read_run_info(Path(run.run_info_path))
            if info.get("user_errors") or result.returncode == USER_ERROR_EXIT:
                raise LoadTestFailed(user_error_message(info, result))
            if result.returncode not in (0, 1) or result.timed_out or not info.get("started_at_db"):
                raise LoadTestFailed(
                    f"Locust did not run to the end (exit {result.returncode}"
                    f"{', killed after overrunning' if result.timed_out else ''}); "
                    f"see {result.log_path}:\n{result.log_tail(15)}")
            if target is None:
                with ChatDB(dsn, schema, application_name="chatlab-loadtest-history") as db:
                    raw = db.events()
                    checks = db.integrity()
            else:
                tables = read_database(dsn, schema)  # only the seed's tables: what any such system has
                checks = integrity(tables)
        finally:
            if not settings.keep_schema:
                drop_schema(dsn, schema)
    if target is None:
        log = to_scenario_time(raw, started_at_db=info["started_at_db"], time_scale=settings.time_scale,
                               duration=settings.duration)
    else:
        log = target_log(tables, target, settings, started_at_db=info["started_at_db"])
    failed = failures_note(result)
    if failed:
        notes.append(failed)
    lost = workers_lost(info)
    if lost:
        notes.append(lost_workers_note(lost, all_lost=len(lost) >= settings.workers))
    late = info.get("arrival_lateness_max_s")
    if late is not None and late > LATE_NOTE_S:
        notes.append(f"some chats were opened up to {late:.0f} scenario s after their arrival time: all "
                     f"{pool} real-user connections were busy (raise --users, or add Locust workers)")
    log.attrs.update({
        "source": "loadtest", "scenario": scenario.name, "policy": settings.policy,
        "policy_params": dict(settings.policy_params), "seed": settings.seed, "mode": scenario.policy.mode,
        "duration": settings.duration, "time_scale": settings.time_scale, "warmup": scenario.warmup,
        "operators": [o.operator_id for o in settings.operators], "stuck_after": float(scenario.jobs.stuck_after),
        **scenario.floor_attrs(),
    })
    outcome = LoadTestOutcome(log=log, locust=result, settings=run.redacted(), run_info=info, schema=schema,
                              wall_s=time.monotonic() - started, integrity=checks, notes=notes)
    (out_dir / RESULTS_FILE).write_text(json.dumps(outcome.results(), indent=2, default=str) + "\n")
    return outcome


def failures_note(result: LocustResult) -> str | None:
    """What the report must say when calls failed (not races: those are their own rows, never
    failures): the steps those calls were part of did not happen, e.g. while the database was
    down, so the run's numbers are not the scenario's.  None when nothing failed."""
    if not result.failures:
        return None
    kinds = result.failure_kinds()
    first = f"; most frequent: {kinds[0][0]}: {kinds[0][1][:200]} ({kinds[0][2]}x)" if kinds else ""
    return (f"{result.failures} of {result.requests} database calls failed{first}: the steps they were part of "
            "did not happen, so the numbers are not the scenario's (see locust_failures.csv)")


def workers_lost(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The workers the master's run info says were lost and never came back (``loadtest/workerwatch.py``)."""
    return [w for w in info.get("workers_lost") or [] if "healed_at" not in w]


def lost_workers_note(lost: list[dict[str, Any]], *, all_lost: bool) -> str:
    """What the report must say when the master lost workers: what was taken over, what was not."""
    which = ", ".join(f"worker {w.get('worker_index')} at scenario t = {float(w.get('scenario_time') or 0):.0f} s"
                      for w in lost)
    if all_lost:
        return (f"the run lost every Locust worker ({which}) and Locust ended it at the last loss: "
                "its numbers are not the scenario's")
    return (f"the run lost {len(lost)} Locust worker{'s' if len(lost) != 1 else ''} ({which}): the workers left "
            "took over the lost one's operators and, if it ran there, the housekeeper (Locust rebalancing; "
            "advisory-lock claims), and idle detection releases what those operators held; but the lost "
            "worker's share of the arrivals after the loss was not played and its users' open chats were left "
            "unfinished: the numbers are not the scenario's")


def user_error_message(info: dict[str, Any], result: LocustResult) -> str:
    """One line: a Locust user raised, so the run's numbers are not the scenario's (``loadtest/usererrors.py``)."""
    n = int(info.get("user_errors") or 0)
    first = info.get("first_user_error")
    what = f"{n} exception{'s' if n != 1 else ''} in Locust users" if n else "an exception in a Locust user"
    return (f"the load test is not valid: {what}{f' (first: {first})' if first else ''}; "
            f"tracebacks in {result.log_path}")


def target_notes(target: Target, scenario: Any) -> list[str]:
    """What a report of an outside target must say: whose assign ran, and what the target lacks."""
    notes = [f"target {target.name} ({target.path.name}): its own assign function ran (no policy or routing "
             "rule is passed); the history was read from the seed's four tables, which record no log-ins, "
             "so every operator counts as online for the whole run"]
    lacking = {"unassign": "operators reply instead of handing chats back", "online": "no log-ins",
               "offline": "no log-outs", "touch": "no heartbeats", "idle_detection": "no idle detection",
               "stuck_release": "no stuck-chat release"}
    missing = [f"{f} ({lacking[f]})" for f in target.missing if f in lacking]
    if missing:
        notes.append(f"target {target.name} lacks flows: {'; '.join(missing)}")
    if scenario.users.topics and any(t.skill or t.priority or t.weight != 1 for t in scenario.users.topics):
        notes.append(f"target {target.name}: the scenario's topics, skills and priorities are not passed to it")
    if scenario.jobs.reassign_after is not None:
        notes.append(f"target {target.name}: the lab's no-answer timeout (jobs.reassign_after) is not played")
    return notes


def target_log(tables: Any, target: Target, settings: LoadTestSettings, *, started_at_db: str) -> pd.DataFrame:
    """An outside target's history as the event log in scenario time, the lab's ids restored."""
    from sim.eventlog import coerce

    ops = {str(target.operator_id(o.operator_id)): o.operator_id for o in settings.operators}
    log = to_event_log(tables, origin=pd.Timestamp(started_at_db).tz_convert("UTC"), time_scale=settings.time_scale,
                       duration=settings.duration, operator_numbers=ops if target.ids == "uuid" else None,
                       user_numbers=_user_numbers(tables, target))
    out = log.assign(time=log["time"].clip(lower=0.0))
    out = coerce(out.loc[out["time"] <= settings.duration].reset_index(drop=True))
    out.attrs = dict(log.attrs)
    return out


def _user_numbers(tables: Any, target: Target) -> dict[str, int] | None:
    """UUIDs of the population's users back to their numbers (a returning user's chats share one)."""
    if target.ids != "uuid":
        return None
    seen = set(tables.chats["real_user_id"].dropna())
    out: dict[str, int] = {}
    for n in range(1, 10 * len(seen) + 1000):  # the population numbers users 1, 2, ...
        key = str(target.user_id(n))
        if key in seen:
            out[key] = n
            if len(out) == len(seen):
                break
    return out


def seed_floor(db: Any, settings: LoadTestSettings, scenario: Any) -> int:
    """Define the scenario's topics and create its operators with their capacity and skills
    (offline: each logs in when its shift starts, so the history's ``operator_online`` rows are
    the scenario's shifts).  In a fresh schema the ids come out 1..n in creation order — the
    simulation's ids, so per-operator tables line up."""
    if isinstance(db, TargetDB):  # an outside target: its operators get the lab's ids (as its own id type)
        for op in settings.operators:
            db.create_operator(op.name, op.max_chats, False, operator_id=op.operator_id)
        return len(settings.operators)
    for topic in scenario.users.topics:
        db.define_topic(topic.name, topic.skill, topic.priority, topic.weight)
    for op in settings.operators:
        got = db.create_operator(op.name, op.max_chats, False, list(op.skills))
        if got != op.operator_id:
            raise LoadTestFailed(f"schema {db.schema!r} is not fresh: operator {op.name!r} got id {got}, "
                                 f"expected {op.operator_id}")
    return len(settings.operators)


def _run_locust(settings: LoadTestSettings, config_path: Path, on_tick: Callable[[float], None] | None) -> LocustResult:
    out_dir, run_time = Path(settings.out_dir), settings.run_time_wall_s
    env = {CONFIG_ENV: str(config_path.resolve())}
    extra: list[str] = []
    workers: list[Any] = []
    if settings.expect_workers:
        extra += ["--master", "--expect-workers", str(settings.expect_workers), "--master-bind-host",
                  settings.master_bind_host, "--master-bind-port", str(settings.master_port),
                  "--expect-workers-max-wait", "60",
                  # a worker lost mid-run: its users go to the others at once (loadtest/workerwatch.py)
                  "--enable-rebalancing"]
    try:
        for index in range(settings.local_workers):
            workers.append(start_worker(out_dir / f"locust_worker{index + 1}.log",
                                        master_host="127.0.0.1", master_port=settings.master_port))
        return run_locust(LOCUSTFILE, users=1, spawn_rate=1, run_time_s=run_time, out_dir=out_dir, env=env,
                          csv_name="locust", hard_timeout_s=run_time + START_WAIT_S + GRACE_S + (60 if settings.expect_workers else 0),
                          web=settings.web, web_port=settings.web_port, extra=extra, on_tick=on_tick, shape=True,
                          # the flows' loops run until the run ends (they watch run.stopping); what is
                          # still sleeping after a second is cut (its events would fall after the window)
                          stop_timeout_s=1.0)
    finally:
        for proc in workers:
            stop_worker(proc)


def start_worker(log_path: Path, *, master_host: str, master_port: int) -> Any:
    """A Locust worker process on this machine, started exactly as on a remote machine.

    No configuration is handed to it: the master forwards it with the spawn message.
    """
    import subprocess
    import sys

    env = dict(os.environ)
    env.pop(CONFIG_ENV, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", master_host,
             "--master-port", str(master_port), "--loglevel", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT), start_new_session=True)


def stop_worker(proc: Any) -> None:
    """Workers quit with the master; make sure (SIGTERM, then SIGKILL) they are gone."""
    try:
        proc.wait(timeout=15)
    except Exception:
        stop_process(proc)


def _read_run_info(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def to_scenario_time(log: pd.DataFrame, *, started_at_db: str, time_scale: float, duration: float) -> pd.DataFrame:
    """Map the history's wall time to scenario time and keep the run window ``[0, duration]``.

    The history's ``time`` is lab seconds of the database clock (since
    :data:`chatlab.db.clock.EPOCH`); the Locust process recorded the database time at
    scenario t = 0.  Scenario time is wall time since then times the time scale.  Rows after
    the window (users finishing during Locust's stop timeout) are dropped, as the simulation
    stops at ``duration`` too.
    """
    from sim.eventlog import coerce

    origin = (pd.Timestamp(started_at_db).tz_convert("UTC") - pd.Timestamp(EPOCH)).total_seconds()
    out = log.copy()
    out["time"] = ((out["time"].astype("float64") - origin) * float(time_scale)).clip(lower=0.0)
    out = out.loc[out["time"] <= duration].sort_values("time", kind="stable").reset_index(drop=True)
    out = coerce(out)
    out.attrs = dict(log.attrs)
    return out
