"""Run Locust in a separate, bounded process and read its CSV statistics.

Locust must never run inside a process that has already imported psycopg (pytest, the
``chatlab`` CLI after a migration ...): psycopg would have chosen its blocking C wait
function and every simulated user would wait for the others.  A fresh
``python -m locust`` imports locust (which patches ``select``) before our locustfile
imports psycopg, so the order is right by construction.

This module itself imports neither locust nor psycopg.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.errors import ChatLabError

ROOT = Path(__file__).resolve().parents[1]


class LocustRunFailed(ChatLabError):
    """The Locust process could not start, crashed, or had to be killed."""


@dataclass
class LocustResult:
    """What a finished Locust process left behind."""

    returncode: int
    elapsed_s: float
    csv_prefix: Path
    log_path: Path
    timed_out: bool = False
    #: Locust's final per-(name, type) statistics (its ``--json-file``: exact, written at exit;
    #: the CSV files are rewritten once a second while running, so their last state may lag).
    entries: list[dict[str, Any]] = field(default_factory=list)

    def count(self, name: str | None = None, request_type: str | None = None) -> int:
        """Requests of one name (all names if None) and type (all types if None)."""
        return sum(int(e.get("num_requests", 0)) for e in self.entries
                   if (name is None or e.get("name") == name)
                   and (request_type is None or e.get("method") == request_type))

    def failure_count(self, name: str | None = None) -> int:
        return sum(int(e.get("num_failures", 0)) for e in self.entries
                   if name is None or e.get("name") == name)

    @property
    def failures(self) -> int:
        return self.failure_count()

    @property
    def requests(self) -> int:
        return self.count()

    def table(self) -> list[dict[str, Any]]:
        """One summary row per (type, name): count, failures, mean and max ms."""
        rows = []
        for e in sorted(self.entries, key=lambda e: (e.get("name", ""), e.get("method", ""))):
            n = int(e.get("num_requests", 0))
            rows.append({
                "type": e.get("method"), "name": e.get("name"), "requests": n,
                "failures": int(e.get("num_failures", 0)),
                "mean_ms": (float(e.get("total_response_time", 0.0)) / n) if n else None,
                "max_ms": e.get("max_response_time"),
            })
        return rows

    def failure_kinds(self) -> list[tuple[str, str, int]]:
        """(name, error, occurrences) of Locust's ``<prefix>_failures.csv``, most frequent first."""
        rows = read_stats_csv(Path(f"{self.csv_prefix}_failures.csv"))
        kinds = [(r.get("Name", ""), " ".join(r.get("Error", "").split()), int(float(r.get("Occurrences") or 0)))
                 for r in rows]
        return sorted(kinds, key=lambda k: -k[2])

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def read_stats_csv(path: Path) -> list[dict[str, str]]:
    """Rows of Locust's ``<prefix>_stats.csv`` (empty list when Locust did not write it)."""
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def read_stats_json(path: Path) -> list[dict[str, Any]]:
    """Entries of Locust's ``--json-file`` output (empty list when it is missing or unreadable)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def locust_command(
    locustfile: Path | str,
    *,
    users: int,
    spawn_rate: float,
    run_time_s: float,
    csv_prefix: Path,
    web: bool = False,
    web_port: int = 8089,
    extra: Sequence[str] = (),
    python: str = sys.executable,
    python_prelude: str | None = None,
    shape: bool = False,
    stop_timeout_s: float = 5.0,
) -> list[str]:
    """The ``python -m locust ...`` argument list (headless unless ``web``; web binds loopback only).

    ``python_prelude`` replaces ``-m locust`` with ``-c <code>`` (code that ends by running
    locust's ``__main__``): only the concurrency benchmark uses it, to reproduce the wrong
    import order on purpose.  ``shape``: the locustfile has a ``LoadTestShape`` that sets
    users and run time itself (Locust ignores ``-u``/``-r``/``--run-time`` then and warns).
    ``stop_timeout_s``: how long users may finish their task at the end before being killed.
    """
    launcher = ["-c", python_prelude] if python_prelude else ["-m", "locust"]
    cmd = [python, *launcher, "-f", str(locustfile)]
    if not shape:
        cmd += ["-u", str(int(users)), "-r", f"{spawn_rate:g}", "--run-time", f"{max(1, int(round(run_time_s)))}s"]
    cmd += ["--csv", str(csv_prefix), "--json-file", str(csv_prefix), "--stop-timeout", f"{stop_timeout_s:g}",
            "--loglevel", "WARNING"]
    if web:
        cmd += ["--web-host", "127.0.0.1", "--web-port", str(web_port), "--autostart", "--autoquit", "5"]
    else:
        cmd += ["--headless", "--only-summary"]
    return [*cmd, *extra]


def run_locust(
    locustfile: Path | str,
    *,
    users: int,
    spawn_rate: float,
    run_time_s: float,
    out_dir: Path,
    env: Mapping[str, str] | None = None,
    csv_name: str = "locust",
    hard_timeout_s: float | None = None,
    web: bool = False,
    web_port: int = 8089,
    extra: Sequence[str] = (),
    on_tick: Callable[[float], None] | None = None,
    python_prelude: str | None = None,
    shape: bool = False,
    stop_timeout_s: float = 5.0,
) -> LocustResult:
    """Run Locust to completion in a child process; kill it if it overruns ``hard_timeout_s``.

    Output goes to ``out_dir/<csv_name>.log``; statistics to ``out_dir/<csv_name>_stats.csv``
    (plus ``_stats_history.csv``, ``_failures.csv``, ``_exceptions.csv``).  ``on_tick(elapsed)``
    is called about once a second (for progress bars).
    """
    out_dir = Path(out_dir).resolve()  # the child runs in the repository, not in our CWD
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / csv_name
    log_path = out_dir / f"{csv_name}.log"
    cmd = locust_command(locustfile, users=users, spawn_rate=spawn_rate, run_time_s=run_time_s,
                         csv_prefix=prefix, web=web, web_port=web_port, extra=extra,
                         python_prelude=python_prelude, shape=shape, stop_timeout_s=stop_timeout_s)
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), child_env.get("PYTHONPATH", "")]))
    limit = hard_timeout_s if hard_timeout_s is not None else run_time_s + 60.0
    start = time.monotonic()
    timed_out = False
    with log_path.open("w") as log:
        try:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=child_env,
                                    cwd=str(ROOT), start_new_session=True)
        except OSError as exc:
            raise LocustRunFailed(f"cannot start Locust ({cmd[0]} -m locust): {exc}") from None
        try:
            while True:
                try:
                    proc.wait(timeout=1.0)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - start
                    if on_tick is not None:
                        on_tick(elapsed)
                    if elapsed > limit:
                        timed_out = True
                        stop_process(proc)
                        break
        except BaseException:
            stop_process(proc)  # Ctrl-C or an error in on_tick: never leave Locust running
            raise
    result = LocustResult(returncode=proc.returncode, elapsed_s=time.monotonic() - start,
                          csv_prefix=prefix, log_path=log_path, timed_out=timed_out,
                          entries=read_stats_json(Path(f"{prefix}.json")))
    return result


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM the Locust process group, then SIGKILL it if it does not go within 10 s."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
