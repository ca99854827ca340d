"""The lab's live numbers in Locust's web UI, and an exception in a Locust user failing the run.

* ``live_numbers`` (the query behind the web UI's tabs) agrees with chatlab.metrics on a
  random legacy history (repeats, premature assignments, served waits and their percentiles);
* a real ``chatlab loadtest baseline --web`` on a free loopback port, read by a real headless
  Chromium twice during the run: the "Chat lab" tab shows numbers, and they move; the
  operators tab has every operator; ``/chatlab/live`` is consistent; the run is stopped from
  the UI and ends with exit 0;
* ``$CHATLAB_LOADTEST_FAULT`` makes an operator's ``on_start``, its poller or the arrival feeder
  raise in the real Locust process: ``chatlab loadtest`` exits 2 with one line saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# --------------------------------------------------------------------------- the query


def test_live_numbers_agree_with_the_metrics_on_a_random_legacy_history(db) -> None:
    from chatlab.metrics.episodes import assignments, wait_episodes
    from sim.errors import ChatLabError

    rng = np.random.default_rng(19)
    ops = [db.create_operator(f"op{i}", 2) for i in range(3)]
    chats: dict[int, int] = {}  # chat -> its user
    t = 0.0
    for step in range(220):
        t += float(rng.exponential(3.0))
        db.set_clock(t)
        action = rng.choice(["open", "assign", "assign", "reply", "write", "unassign", "end"])
        op = int(rng.choice(ops))
        try:
            if action == "open" or not chats:
                user = 1000 + step
                chats[db.real_user_message(user, "hi")] = user
            elif action == "assign":
                db.assign_chat_to_operator(op, "legacy")
            elif action in ("reply", "unassign") and db.active_chats(op):
                chat = int(rng.choice(db.active_chats(op)))
                if action == "reply":
                    db.operator_message(op, chat, "answer")
                else:
                    db.unassign_chat(op, chat)
            elif action == "write":
                chat = int(rng.choice(list(chats)))
                db.real_user_message(chats[chat], "again", chat)
            elif action == "end" and rng.random() < 0.3:
                db.end_chat(int(rng.choice(list(chats))), "resolved")
        except ChatLabError:
            pass  # an illegal move (a completed chat, a full operator): the functions refused it
    live = db.live_numbers()
    log = db.events()
    asg = assignments(log)
    served = wait_episodes(log).query("outcome == 'served'")["wait_s"].to_numpy()
    assert live["assignments"] == len(asg) > 30
    assert live["repeats"] == int(asg["repeat"].sum()) > 0  # legacy: the same chat again
    assert live["premature"] == int(asg["premature"].sum()) > 0
    assert live["waits_served"] == len(served) > 10
    assert live["wait_percentiles_s"] == pytest.approx(list(np.percentile(served, [50, 90, 99])), rel=1e-9)
    chats_now = db.chats()
    assert live["queue_length"] == sum(c["chat_state"] == "waiting_assignment" for c in chats_now)
    per_op = {o["id"]: o for o in live["operators"]}
    assert sorted(per_op) == ops
    assert sum(o["assignments"] for o in per_op.values()) == live["assignments"]
    for op in ops:
        mine = asg.loc[asg["operator_id"] == op]
        assert per_op[op]["assignments"] == len(mine)
        assert per_op[op]["repeats"] == int(mine["repeat"].sum())
        assert per_op[op]["holding"] == len(db.active_chats(op))


# --------------------------------------------------------------------------- the web UI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Rows(HTMLParser):
    """The text of every table row (``<tr>``) of a page: one list of cell texts per row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _browser_rows(url: str, tmp: Path) -> list[list[str]]:
    """Load ``url`` in a headless Chromium (the React UI runs its scripts and fetches), return the
    table rows of the rendered DOM.  Chromium and its helpers are killed whatever happens."""
    profile = tmp / f"chromium-{time.monotonic_ns()}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=4000", "--dump-dom", url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=20)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    parser = _Rows()
    parser.feed(out.decode(errors="replace"))
    return parser.rows


def _number(text: str) -> float:
    return float(text.split()[0].replace(",", ""))


def test_web_ui_tab_shows_the_labs_numbers_changing_during_the_run(pg_uri: str, tmp_path: Path) -> None:
    assert CHROMIUM, "needs a real browser: apt-get install -y chromium (.ci/run installs it)"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cli = subprocess.Popen(
        [sys.executable, "-m", "chatlab.cli", "loadtest", "baseline", "--policy", "legacy", "--web", "--web-port",
         str(port), "--run-time", "20", "--database-url", pg_uri, "--out", str(tmp_path / "out"), "--no-progress"],
        cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:  # the UI is up once Locust started (schema migrated, operators seeded)
            assert cli.poll() is None, cli.stdout.read().decode(errors="replace")
            try:
                live = json.load(urllib.request.urlopen(f"{base}/chatlab/live", timeout=2))
                if live.get("assignments"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the web UI never showed an assignment"
            time.sleep(0.3)

        def summary() -> dict[str, str]:
            rows = _browser_rows(f"{base}/?tab=chatlab", tmp_path)
            return {r[0]: r[1] for r in rows if len(r) == 2 and r[0] != "Metric"}

        first = summary()
        time.sleep(1.5)
        second = summary()
        for metric in ("scenario time (s)", "chats opened", "queue length", "assignments", "repeat assignments",
                       "premature assignments", "wait p50 (scenario s)", "wait p99 (scenario s)", "user errors"):
            assert metric in first and metric in second, (metric, first)
            _number(second[metric])  # a number, not empty
        assert _number(second["scenario time (s)"]) > _number(first["scenario time (s)"])
        assert _number(second["assignments"]) > _number(first["assignments"]) > 0
        assert _number(second["repeat assignments"]) > 0  # legacy hands operators the same chat again
        assert second["user errors"] == "0"

        ops = [r for r in _browser_rows(f"{base}/?tab=chatlab-operators", tmp_path) if len(r) == 6]
        assert ops[0] == ["Operator", "Online", "Holding", "Assignments", "Repeats", "Premature"]
        assert [r[0] for r in ops[1:]] == [str(i) for i in range(1, 7)]  # baseline's six operators
        live = json.load(urllib.request.urlopen(f"{base}/chatlab/live", timeout=5))
        assert sum(o["assignments"] for o in live["operators"]) == live["assignments"]  # one snapshot
        assert live["policy"] == "legacy" and live["time_scale"] == 60.0

        # end the run from the UI (Locust's Stop); --autoquit 5 then ends Locust, the CLI reports
        urllib.request.urlopen(urllib.request.Request(f"{base}/stop", method="POST"), timeout=5).read()
        out, _ = cli.communicate(timeout=40)
        assert cli.returncode == 0, out.decode(errors="replace")
        assert (tmp_path / "out" / "summary.md").exists()
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGINT)  # the CLI stops Locust and drops the schema
            try:
                cli.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(cli.pid, signal.SIGKILL)
                cli.wait()


# --------------------------------------------------------------------------- user errors

SMALL = """
name = "lt_fault"
duration = 3600
seed = 5
[users]
think_time = { dist = "exponential", mean = 8 }
[users.arrivals]
rate = 0.12
[operators]
count = 3
handle_time = { dist = "exponential", mean = 4 }
"""


@pytest.mark.parametrize("point", [
    "operator.on_start",  # Locust caught it: an exception in on_start, in each of the 3 operators
    "operator.poller",  # the lab caught it in an operator's second greenlet (it carries on polling)
    "feeder",  # ... in the arrival feeder (not a user, but without it the run starves)
])
def test_an_exception_in_a_locust_user_fails_the_run_in_one_line(point: str, pg_uri: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture) -> None:
    from chatlab.cli import main
    from loadtest.usererrors import FAULT_ENV

    scenario = tmp_path / "lt_fault.toml"
    scenario.write_text(SMALL)
    monkeypatch.setenv(FAULT_ENV, point)  # inherited by the Locust process
    out = tmp_path / "out"
    code = main(["loadtest", str(scenario), "--run-time", "3", "--database-url", pg_uri, "--out", str(out),
                 "--users", "5", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "\n" not in err and err.startswith("chatlab loadtest: error: the load test is not valid:"), err
    assert f"injected fault at {point}" in err and "exception" in err and str(out / "locust.log") in err, err
    assert "loadtest/usererrors.py" in err  # where it was raised (the innermost frame of the lab's code)
    info = json.loads((out / "locust_run_info.json").read_text())
    assert info["user_errors"] >= (3 if point.startswith("operator") else 1)
    assert not (out / "summary.md").exists()  # no report of an invalid run
