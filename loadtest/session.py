"""One load test from start to finish: database, schema, Locust, event log, report.

``chatlab loadtest`` and ``chatlab compare-real`` both call :func:`run_load_test`.  The
steps, each bounded and each undone on the way out:

1. validate the options (one-line :class:`LoadTestUsageError` before anything starts);
2. the database: ``DATABASE_URL`` (or ``--database-url``) or a temporary embedded server
   that is stopped and deleted afterwards;
3. a fresh, uniquely named schema, migrated by the DB helper's runner, with the scenario's
   operators seeded (offline: each Locust ``Operator`` logs in when its shift starts);
4. Locust in a child process (never in this one: psycopg is imported here, see
   ``loadtest/locustproc.py``), headless or with the loopback-only web UI, killed if it
   overruns its run time by more than a grace period;
5. the history tables read back as the event log (``chatlab.db.history``), wall time
   mapped to scenario time, then the same metrics and report as ``chatlab run``;
6. the schema dropped (unless ``keep_schema``), the server stopped.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from loadtest.config import LoadTestConfig, SeededOperator
from loadtest.database import database
from loadtest.locustproc import ROOT, LocustResult, LocustRunFailed, run_locust
from sim.errors import ChatLabError

LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
#: Seconds Locust may overrun its run time before it is killed (start-up + --stop-timeout).
GRACE_S = 45.0
DEFAULT_TIME_SCALE = 60.0
#: Arrivals released later than this (scenario s) are worth a note in the report.
LATE_NOTE_S = 30.0


class LoadTestUsageError(ChatLabError):
    """A load-test option that cannot be used (bad time scale, run time, users, port ...)."""


class LoadTestFailed(ChatLabError):
    """The load test ran but produced nothing usable (Locust crashed, no events recorded)."""


@dataclass(frozen=True)
class LoadTestOptions:
    scenario: str
    policy: str | None = None
    time_scale: float = DEFAULT_TIME_SCALE
    run_time_s: float | None = None  # wall seconds; default: the scenario's duration / time_scale
    users: int | None = None  # cap on concurrent RealUser Locust users; default: sized by Little's law
    out_dir: Path | None = None
    seed: int | None = None
    web: bool = False
    web_port: int = 8089
    database_url: str | None = None
    keep_schema: bool = False
    expect_workers: int = 0  # distributed mode: run Locust as master and wait for this many workers
    local_workers: int = 0  # start that many of them here (loopback), for trying distributed mode
    master_bind_host: str = "127.0.0.1"
    master_port: int = 5557
    on_tick: Callable[[float], None] | None = None


@dataclass
class LoadTestOutcome:
    """What a finished load test produced."""

    log: pd.DataFrame
    locust: LocustResult
    config: LoadTestConfig
    run_info: dict[str, Any]
    schema: str
    duration: float  # scenario seconds covered
    wall_s: float
    extras: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- validation
def check_options(opts: LoadTestOptions) -> None:
    """Raise :class:`LoadTestUsageError` naming the first unusable option."""
    if not (isinstance(opts.time_scale, (int, float)) and math.isfinite(opts.time_scale) and opts.time_scale > 0):
        raise LoadTestUsageError(f"--time-scale must be a number > 0 (scenario seconds per wall second), got {opts.time_scale!r}")
    if opts.run_time_s is not None and not (math.isfinite(opts.run_time_s) and opts.run_time_s >= 1):
        raise LoadTestUsageError(f"--run-time must be at least 1 wall second, got {opts.run_time_s!r}")
    if opts.users is not None and not (1 <= opts.users <= 500):
        raise LoadTestUsageError(f"--users must be between 1 and 500 (concurrent simulated real users), got {opts.users}")
    if not (1024 <= opts.web_port <= 65535):
        raise LoadTestUsageError(f"--web-port must be between 1024 and 65535, got {opts.web_port}")
    if opts.expect_workers < 0 or opts.local_workers < 0 or opts.local_workers > opts.expect_workers:
        raise LoadTestUsageError("--local-workers must be between 0 and --expect-workers")
    if opts.policy is not None:
        from sim.policies import make_policy

        make_policy(opts.policy)  # UnknownPolicy (a ChatLabError) names the valid ones


def schema_name(scenario: str, policy: str) -> str:
    """A fresh schema per run: ``lt_<scenario>_<policy>_<random>`` (lower case, <= 63 bytes)."""
    stem = re.sub(r"[^a-z0-9]+", "_", f"{Path(scenario).stem}_{policy}".lower()).strip("_")[:40]
    return f"lt_{stem}_{uuid.uuid4().hex[:10]}"


# ----------------------------------------------------------------------------- the run
@dataclass(frozen=True)
class RunPlan:
    """What a load test will do, decided (and validated) before anything starts."""

    scenario: Any  # sim.scenario.Scenario
    flows: Any  # loadtest.flowparams.FlowParams
    policy: str
    seed: int
    run_time_s: float  # wall seconds Locust runs
    duration: float  # scenario seconds covered: min(scenario duration, run time x time scale)


def plan(opts: LoadTestOptions) -> RunPlan:
    """Validate the options and work out policy, seed, run time and the scenario window."""
    from loadtest.flowparams import from_scenario
    from sim.scenario import load_scenario

    check_options(opts)
    scenario = load_scenario(opts.scenario)
    flows = from_scenario(scenario)
    run_time = float(opts.run_time_s) if opts.run_time_s is not None else flows.duration / opts.time_scale
    run_time = max(1.0, round(run_time))
    if run_time > 6 * 3600:
        raise LoadTestUsageError(
            f"the run would take {run_time / 3600:.1f} wall hours at --time-scale {opts.time_scale:g}; "
            "raise --time-scale or give --run-time")
    return RunPlan(scenario=scenario, flows=flows, policy=opts.policy or flows.policy,
                   seed=int(opts.seed if opts.seed is not None else flows.seed), run_time_s=run_time,
                   duration=min(flows.duration, run_time * opts.time_scale))


def seeded_operators(flows: Any, duration: float) -> tuple[SeededOperator, ...]:
    """The scenario's operators with ids 1..n (the simulation's ids), capacity and shifts.

    A shift that lasts to the end of the scenario never ends here either (the simulation
    does not log such an operator out at the end, so neither may the load test).
    """
    def window(a: float, b: float) -> tuple[float, float]:
        return float(a), (math.inf if b >= flows.duration or b >= duration else float(b))

    return tuple(
        SeededOperator(operator_id=i + 1, name=f"operator-{i + 1}", max_chats=int(flows.max_chats),
                       shifts=tuple(window(a, b) for a, b in flows.shifts[i]))
        for i in range(int(flows.operator_count))
    )


def run_load_test(opts: LoadTestOptions) -> LoadTestOutcome:
    """Run one bounded load test and return its event log (scenario time) and Locust's stats."""
    from loadtest import dbsetup
    from loadtest.plan import pool_limit

    the_plan = plan(opts)
    scenario, flows, policy, seed = the_plan.scenario, the_plan.flows, the_plan.policy, the_plan.seed
    run_time, duration = the_plan.run_time_s, the_plan.duration
    # absolute: Locust runs with the repository as its working directory, not the user's
    out_dir = Path(opts.out_dir or Path("reports") / Path(opts.scenario).stem / f"loadtest-{policy}").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = max(1, opts.expect_workers)
    pool = opts.users if opts.users is not None else pool_limit(flows, duration, workers=workers)
    scenario_ref = str(Path(opts.scenario).resolve()) if Path(opts.scenario).suffix == ".toml" else opts.scenario
    operators = seeded_operators(flows, duration)
    started = time.monotonic()
    notes = []
    if flows.mode == "push":
        notes.append("the scenario's push mode is played as pull: the database has no dispatcher, so "
                     "operators ask for chats every poll_interval (waits come out longer than the model's)")
    with database(opts.database_url) as dsn:
        schema = schema_name(opts.scenario, policy)
        try:
            dbsetup.create_schema(dsn, schema)
        except ChatLabError as exc:  # e.g. cannot connect: one line, whatever the driver printed
            raise LoadTestFailed(" ".join(str(exc).split())) from None
        # each operator holds two connections (worker + poller), each real user one, plus the
        # housekeeper and a few short-lived ones: stay inside the server's max_connections
        spare = dbsetup.connection_budget(dsn) - 2 * len(operators) - 4 * workers
        if spare < 2:
            dbsetup.drop_schema(dsn, schema)
            raise LoadTestUsageError(
                f"the server allows too few connections for {len(operators)} operators "
                f"(need {2 * len(operators) + 4 * workers + 2}, have {spare + 2 * len(operators) + 4 * workers}); "
                "raise max_connections or use fewer operators")
        if pool > spare:
            notes.append(f"real-user pool capped at {spare} by the server's max_connections (wanted {pool})")
            pool = spare
        try:
            dbsetup.seed_operators(dsn, schema, operators)
            config = LoadTestConfig(
                dsn=dsn, schema=schema, scenario=scenario_ref, policy=policy, time_scale=float(opts.time_scale),
                seed=seed, run_time_wall_s=run_time, operators=operators,
                policy_params={"fallback_after": float(flows.fallback_after)} if policy == "exclude_last_fallback" else {},
                user_pool=int(pool), workers=workers, run_info_path=str(out_dir / "locust_run_info.json"),
            )
            config_path = config.write(out_dir / "loadtest_config.json")
            try:
                result = _run_locust(opts, config, config_path, out_dir, run_time)
            finally:
                config_path.unlink(missing_ok=True)  # it holds the database URL (maybe a password)
            info = _read_run_info(out_dir / "locust_run_info.json")
            if result.returncode not in (0, 1) or result.timed_out or not info.get("started_at_db"):
                raise LoadTestFailed(
                    f"Locust did not run to the end (exit {result.returncode}{', killed after overrunning' if result.timed_out else ''}); "
                    f"see {result.log_path}:\n{result.log_tail(15)}")
            raw = dbsetup.read_event_log(dsn, schema)
            checks = dbsetup.integrity(dsn, schema)
        finally:
            if not opts.keep_schema:
                dbsetup.drop_schema(dsn, schema)
    log = to_scenario_time(raw, started_at_db=info["started_at_db"], time_scale=opts.time_scale, duration=duration)
    late = info.get("arrival_lateness_max_s")
    if late is not None and late > LATE_NOTE_S:
        notes.append(f"some chats were opened up to {late:.0f} scenario s after their arrival time: all "
                     f"{config.user_pool} real-user connections were busy (raise --users, or add Locust workers)")
    log.attrs.update({
        "source": "loadtest", "scenario": getattr(scenario, "name", opts.scenario), "policy": policy,
        "policy_params": dict(config.policy_params), "seed": seed, "mode": flows.mode, "duration": duration,
        "time_scale": float(opts.time_scale), "operators": [o.operator_id for o in operators],
        "stuck_after": float(flows.stuck_after),
    })
    return LoadTestOutcome(log=log, locust=result, config=replace(config, dsn="(redacted)"), run_info=info,
                           schema=schema, duration=duration, wall_s=time.monotonic() - started,
                           extras={"integrity": checks, "notes": notes})


def _run_locust(opts: LoadTestOptions, config: LoadTestConfig, config_path: Path, out_dir: Path,
                run_time: float) -> LocustResult:
    env = {"CHATLAB_LOADTEST_CONFIG": str(config_path.resolve())}
    extra: list[str] = []
    workers: list[Any] = []
    if opts.expect_workers:
        extra += ["--master", "--expect-workers", str(opts.expect_workers), "--master-bind-host",
                  opts.master_bind_host, "--master-bind-port", str(opts.master_port),
                  "--expect-workers-max-wait", "60"]
    try:
        for index in range(opts.local_workers):
            workers.append(start_worker(out_dir / f"locust_worker{index + 1}.log",
                                        master_host="127.0.0.1", master_port=opts.master_port))
        return run_locust(LOCUSTFILE, users=1, spawn_rate=1, run_time_s=run_time, out_dir=out_dir, env=env,
                          csv_name="locust", hard_timeout_s=run_time + GRACE_S + (60 if opts.expect_workers else 0),
                          web=opts.web, web_port=opts.web_port, extra=extra, on_tick=opts.on_tick, shape=True,
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
    env.pop("CHATLAB_LOADTEST_CONFIG", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", master_host,
             "--master-port", str(master_port), "--loglevel", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT), start_new_session=True)


def stop_worker(proc: Any) -> None:
    """Workers quit with the master; make sure (SIGTERM, then SIGKILL) they are gone."""
    from loadtest.locustproc import _stop

    try:
        proc.wait(timeout=15)
    except Exception:
        _stop(proc)


def _read_run_info(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# ----------------------------------------------------------------------------- time
EPOCH = pd.Timestamp("2026-01-01T00:00:00Z")


def to_scenario_time(log: pd.DataFrame, *, started_at_db: str, time_scale: float, duration: float) -> pd.DataFrame:
    """Map the history's wall time to scenario time and keep the run window ``[0, duration]``.

    ``read_event_log`` gives seconds since 2026-01-01T00:00:00Z of the database clock; the
    Locust process recorded the database time at scenario t = 0.  Scenario time is wall
    time since then times the time scale.  Rows after the window (users finishing during
    Locust's stop timeout) are dropped, as the simulation stops at ``duration`` too.
    """
    from sim.eventlog import coerce

    origin = (pd.Timestamp(started_at_db).tz_convert("UTC") - EPOCH).total_seconds()
    out = log.copy()
    out["time"] = ((out["time"].astype("float64") - origin) * float(time_scale)).clip(lower=0.0)
    out = out.loc[out["time"] <= duration].sort_values("time", kind="stable").reset_index(drop=True)
    out = coerce(out)
    out.attrs = dict(log.attrs)
    return out


# ----------------------------------------------------------------------------- report files
def locust_table(result: LocustResult) -> pd.DataFrame:
    """Locust's final statistics, one row per (type, name)."""
    return pd.DataFrame(result.table(), columns=["type", "name", "requests", "failures", "mean_ms", "max_ms"])


def write_loadtest_files(outcome: LoadTestOutcome, out_dir: Path) -> Path:
    """``loadtest.json`` (Locust totals, integrity checks, the run's counters) and a section in summary.md.

    Called after ``chatlab.report.write_run_report`` wrote the usual run report there.
    """
    from chatlab.report import markdown_table

    out_dir = Path(out_dir)
    lc = outcome.locust
    wall = float(outcome.config.run_time_wall_s)
    data = {
        "scenario_duration_s": outcome.duration,
        "time_scale": outcome.config.time_scale,
        "run_time_wall_s": wall,
        "total_wall_s": outcome.wall_s,
        "locust": {"requests": lc.requests, "failures": lc.failures,
                   "requests_per_s": lc.requests / wall if wall else None, "returncode": lc.returncode,
                   "stats": result_rows(lc)},
        "integrity": outcome.extras.get("integrity", {}),
        "notes": outcome.extras.get("notes", []),
        "users": {"operators": len(outcome.config.operators), "real_user_pool_max": outcome.config.user_pool},
        "run_info": outcome.run_info,
    }
    (out_dir / "loadtest.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    checks = data["integrity"]
    section = [
        "", "## Load test (Locust against PostgreSQL)", "",
        f"- {lc.requests} requests, {lc.failures} failures, {data['locust']['requests_per_s']:.0f} req/s over "
        f"{wall:g} wall s (time scale {outcome.config.time_scale:g}: scenario window {outcome.duration:g} s)",
        f"- history checks: {checks.get('assignments', '?')} holds, {checks.get('double_assigned', '?')} chats held "
        f"by two operators at once, {checks.get('over_capacity', '?')} holds over an operator's capacity",
        "- Locust's CSV statistics: `locust_stats.csv`, `locust_stats_history.csv`, `locust_failures.csv`; "
        "rows typed `sql:<label>` are expected outcomes (`empty` = nothing to assign, a SQLSTATE = a race "
        "the real system has too), not failures.",
        "", markdown_table(locust_table(lc), index=False), "",
    ]
    info = outcome.run_info
    if info.get("arrival_lateness_max_s") is not None:
        section[4:4] = [f"- arrivals released late by the Locust clock: median {info['arrival_lateness_p50_s']:.2f}, "
                        f"max {info['arrival_lateness_max_s']:.2f} scenario s"]
    section[4:4] = [f"- note: {n}" for n in outcome.extras.get("notes", [])]
    summary = out_dir / "summary.md"
    if summary.exists():
        summary.write_text(summary.read_text().rstrip("\n") + "\n" + "\n".join(section))
    return out_dir


def result_rows(result: LocustResult) -> list[dict[str, Any]]:
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
            for row in result.table()]
