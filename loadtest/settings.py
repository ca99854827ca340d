"""One load test's settings: decided and validated before anything starts, handed to Locust as JSON.

One object from the command line to the last Locust worker: :func:`plan` turns what the
user asked for into :class:`LoadTestSettings` (policy, seed, run time, the scenario window,
the seeded operators — a mistake is one :class:`LoadTestUsageError` line before any server
starts); the session fills in the server and schema it created (:meth:`LoadTestSettings.for_server`)
and writes it as the file ``$CHATLAB_LOADTEST_CONFIG`` names; every Locust process reads
it back (:meth:`LoadTestSettings.from_env`), and in distributed mode the master forwards
the same JSON to its workers.  Times are *scenario* seconds unless named ``*_wall_s``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ChatLabError
from sim.policies import make_policy
from sim.scenario import Scenario, load_scenario

CONFIG_ENV = "CHATLAB_LOADTEST_CONFIG"
DEFAULT_TIME_SCALE = 60.0
#: The longest a local run waits for its operators to be in before it starts the clock anyway (wall s;
#: here, not in ``loadtest.runtime``, because the launching process must add it to Locust's hard timeout
#: without importing Locust).
START_WAIT_S = 30.0
#: The longest load test :func:`plan` accepts (wall seconds).
MAX_RUN_WALL_S = 6 * 3600


class LoadTestUsageError(ChatLabError):
    """A load-test option that cannot be used (bad time scale, run time, users, port ...)."""


class BadLoadTestConfig(ChatLabError):
    """The load-test configuration file is missing, unreadable or has a wrong field."""


@dataclass(frozen=True)
class SeededOperator:
    """One operator row created in the run's schema before Locust starts."""

    operator_id: int
    name: str
    max_chats: int = 1
    #: on-shift windows in scenario seconds; empty = always on shift
    shifts: tuple[tuple[float, float], ...] = ()
    skills: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadTestSettings:
    """Everything a load test needs, from the session to every Locust process."""

    scenario: str  # a scenario name or an absolute TOML path (what sim.scenario.load_scenario accepts)
    policy: str
    seed: int
    time_scale: float
    run_time_wall_s: float  # how long Locust runs
    duration: float  # scenario seconds covered: min(scenario duration, run time x time scale)
    operators: tuple[SeededOperator, ...]
    policy_params: dict[str, float] = field(default_factory=dict)
    users: int | None = None  # --users: cap on concurrent RealUsers (None: sized by Little's law)
    user_pool: int = 0  # the RealUser pool ceiling, decided once the server's connection budget is known
    out_dir: str = ""  # where Locust's files and the run info go (absolute)
    database_url: str | None = None  # the user's server (--database-url / $DATABASE_URL); None: a throw-away one
    keep_schema: bool = False
    web: bool = False
    web_port: int = 8089
    expect_workers: int = 0  # distributed mode: Locust runs as master and waits for this many workers
    local_workers: int = 0  # ... of which this many are started here (loopback)
    master_bind_host: str = "127.0.0.1"
    master_port: int = 5557
    dsn: str = ""  # the server the run uses (set by the session)
    schema: str = ""  # the run's fresh schema (set by the session)
    #: dotted scenario fields replaced for this run (:meth:`sim.scenario.Scenario.with_overrides`)
    overrides: dict[str, Any] = field(default_factory=dict)
    #: an outside target (``--target``: absolute path of its TOML file, :mod:`loadtest.target`); None: the lab's SQL
    target: str | None = None

    @property
    def workers(self) -> int:
        """Locust processes that run users (the arrivals are shared among them)."""
        return max(1, self.expect_workers)

    @property
    def run_info_path(self) -> str:
        return str(Path(self.out_dir) / "locust_run_info.json")

    def load_scenario(self) -> Scenario:
        sc = load_scenario(self.scenario)
        return sc.with_overrides(self.overrides) if self.overrides else sc

    def load_target(self):  # noqa: ANN201 - loadtest.target.Target | None
        """The outside target this run drives (None: the lab's own SQL)."""
        if self.target is None:
            return None
        from loadtest.target import load_target

        return load_target(self.target)

    def for_server(self, dsn: str, schema: str, user_pool: int) -> LoadTestSettings:
        """These settings on the server and schema the session prepared."""
        return dataclasses.replace(self, dsn=dsn, schema=schema, user_pool=int(user_pool))

    def redacted(self) -> LoadTestSettings:
        """A copy without connection details (for reports: a URL may hold a password)."""
        return dataclasses.replace(self, dsn="(redacted)", database_url=None if self.database_url is None else "(redacted)")

    # -- JSON for the Locust processes ---------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadTestSettings:
        try:
            ops = tuple(SeededOperator(operator_id=int(o["operator_id"]), name=str(o["name"]),
                                       max_chats=int(o.get("max_chats", 1)),
                                       shifts=tuple((float(a), float(b)) for a, b in o.get("shifts", ())),
                                       skills=tuple(str(s) for s in o.get("skills", ())))
                        for o in data["operators"])
            return cls(**{**data, "operators": ops})
        except (KeyError, TypeError, ValueError) as exc:
            raise BadLoadTestConfig(f"load-test configuration is invalid: {exc!r}") from None

    @classmethod
    def read(cls, path: str | Path) -> LoadTestSettings:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise BadLoadTestConfig(f"{path}: cannot read load-test configuration ({exc})") from None
        return cls.from_dict(data)

    @classmethod
    def from_env(cls) -> LoadTestSettings:
        path = os.environ.get(CONFIG_ENV)
        if not path:
            raise BadLoadTestConfig(f"${CONFIG_ENV} is not set: run the suite with 'chatlab loadtest SCENARIO' "
                                    "or point the variable at a configuration file it wrote")
        return cls.read(path)


def plan(scenario: str, *, policy: str | None = None, time_scale: float = DEFAULT_TIME_SCALE,
         run_time_s: float | None = None, users: int | None = None, seed: int | None = None,
         out_dir: str | Path | None = None, database_url: str | None = None, keep_schema: bool = False,
         web: bool = False, web_port: int = 8089, expect_workers: int = 0, local_workers: int = 0,
         master_bind_host: str = "127.0.0.1", master_port: int = 5557,
         overrides: dict[str, Any] | None = None, target: str | None = None) -> LoadTestSettings:
    """Validate what the user asked for and work out policy, seed, run time and the scenario window.

    Raises :class:`LoadTestUsageError` (or the scenario's own error) naming the first unusable
    option, before any server or process starts.
    """
    if not (isinstance(time_scale, (int, float)) and math.isfinite(time_scale) and time_scale > 0):
        raise LoadTestUsageError(f"--time-scale must be a number > 0 (scenario seconds per wall second), got {time_scale!r}")
    if run_time_s is not None and not (math.isfinite(run_time_s) and run_time_s >= 1):
        raise LoadTestUsageError(f"--run-time must be at least 1 wall second, got {run_time_s!r}")
    if users is not None and not (1 <= users <= 500):
        raise LoadTestUsageError(f"--users must be between 1 and 500 (concurrent simulated real users), got {users}")
    if not (1024 <= web_port <= 65535):
        raise LoadTestUsageError(f"--web-port must be between 1024 and 65535, got {web_port}")
    if expect_workers < 0 or local_workers < 0 or local_workers > expect_workers:
        raise LoadTestUsageError("--local-workers must be between 0 and --expect-workers")
    if database_url or os.environ.get("DATABASE_URL"):
        check_database_url(database_url or os.environ["DATABASE_URL"],
                           "--database-url" if database_url else "$DATABASE_URL")
    if web:
        check_port_free(web_port, "--web-port")
    if policy is not None:
        make_policy(policy)  # UnknownPolicy (a ChatLabError) names the valid ones
    outside = None
    if target is not None:
        from loadtest.target import load_target

        outside = load_target(target)  # TargetError names the file and the flow
        if policy is not None:
            raise LoadTestUsageError(f"--policy: a target plays its own assign function; drop --policy with "
                                     f"--target {outside.name}")
    sc = load_scenario(scenario)
    if overrides:
        sc = sc.with_overrides(overrides)
    run_time = float(run_time_s) if run_time_s is not None else sc.duration / time_scale
    run_time = max(1.0, round(run_time))
    if run_time > MAX_RUN_WALL_S:
        raise LoadTestUsageError(f"the run would take {run_time / 3600:.1f} wall hours at --time-scale {time_scale:g}; "
                                 "raise --time-scale or give --run-time")
    name = policy or (f"target-{outside.name}" if outside is not None else sc.policy.name)
    duration = min(float(sc.duration), run_time * time_scale)
    if isinstance(sc.warmup, float) and sc.warmup >= duration:
        raise LoadTestUsageError(f"warmup: the scenario window covered is {duration:g} s (--run-time x --time-scale), "
                                 f"expected a warm-up shorter than that, got {sc.warmup:g} s")
    ref = str(Path(scenario).resolve()) if Path(scenario).suffix == ".toml" else str(scenario)
    out = Path(out_dir) if out_dir is not None else Path("reports") / Path(scenario).stem / f"loadtest-{name}"
    return LoadTestSettings(
        scenario=ref, policy=name, seed=int(seed if seed is not None else sc.seed), time_scale=float(time_scale),
        run_time_wall_s=run_time, duration=duration, operators=seeded_operators(sc, duration),
        policy_params={"fallback_after": float(sc.policy.fallback_after)} if name == "exclude_last_fallback" else {},
        users=users, out_dir=str(out.resolve()),  # absolute: Locust runs in the repository, not the user's CWD
        database_url=database_url or os.environ.get("DATABASE_URL") or None, keep_schema=keep_schema,
        web=web, web_port=web_port, expect_workers=expect_workers, local_workers=local_workers,
        master_bind_host=master_bind_host, master_port=master_port, overrides=dict(overrides or {}),
        target=None if outside is None else str(outside.path))


def check_database_url(url: str, option: str) -> None:
    """A connection string psycopg can read (a URL or ``key=value`` pairs), checked before anything starts."""
    import psycopg  # here only: the Locust processes import this module before gevent patches select
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise LoadTestUsageError(f"{option}: expected a PostgreSQL URL like postgresql://user@host:5432/dbname "
                                 f"(or key=value settings); it cannot be read ({' '.join(str(exc).split())})") from None


def check_port_free(port: int, option: str) -> None:
    """Nothing listens on ``127.0.0.1:port`` (else Locust's web UI would die with a gevent traceback)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise LoadTestUsageError(f"{option}: port {port} on 127.0.0.1 is in use ({exc.strerror}); "
                                     f"choose a free one, e.g. {option} {port + 1}") from None


def seeded_operators(scenario: Scenario, duration: float) -> tuple[SeededOperator, ...]:
    """The scenario's operators with ids 1..n (the simulation's ids), their group's capacity and
    skills, and their shifts.

    A shift that lasts to the end of the scenario never ends here either (the simulation
    does not log such an operator out at the end, so neither may the load test).
    """
    def window(a: float, b: float) -> tuple[float, float]:
        return float(a), (math.inf if b >= scenario.duration or b >= duration else float(b))

    ops = scenario.operators
    return tuple(SeededOperator(operator_id=i + 1, name=f"{ops.group_of(i).name}-{i + 1}",
                                max_chats=int(ops.group_of(i).max_chats),
                                shifts=tuple(window(a, b) for a, b in scenario.operator_shifts(i)),
                                skills=tuple(sorted(ops.group_of(i).skills)))
                 for i in range(int(ops.count)))
