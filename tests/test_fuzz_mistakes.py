"""Fuzz the user's side: generated malformed scenario files and command lines, each one clear line.

``test_user_mistakes.py`` lists mistakes one by one; this file makes hundreds from the shipped
scenarios (a fixed seed, so a failure is reproducible by its printed case): a value of the
wrong type, negative, NaN, infinite or absurdly large, an unknown key, a required key
removed, broken TOML, bytes that are not UTF-8; and command lines with unknown options and
bad values.  For every case: exit status 2, exactly one line on stderr that names the file
or the option, no traceback, nothing written (the ``--out`` directory and the working
directory stay empty).  In process (``chatlab.cli.main``) for speed, plus a few real
subprocesses.  A case accepted by mistake runs only 60 scenario seconds (``--duration 60``),
and load tests point at a closed port, so a miss fails fast instead of hanging.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chatlab.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["baseline", "mixed_floor", "known_agents", "peak_hour", "shift_change", "vip_rush", "steady_floor"]
#: ``key = value`` lines (not table headers, not numeric keys such as sla_targets' ``0 = 300``).
ASSIGNMENT = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.+)$")
#: Values no field accepts: wrong types, negative, NaN, an unknown key inside a table.
BAD_ANYWHERE = ["nan", "-1", "-0.5", "true", "{ bogus_key = 1 }", "[[1, 2], [3]]", "-inf", '"not a value"']
#: Fields whose size the lab limits (a huge value must be rejected, not run for ever).
LIMITED = {"duration": ["1e300", "4e7"], "rate": ["1e12", "1001"], "count": ["1e9", "100001"],
           "tabs": ["1000"], "seed": ["99999999999"], "unassign_probability": ["1e300"],
           "idle_probability": ["2"], "returning": ["1e9"], "poll_interval": ["1e-9"], "share": ["1e300"],
           "weight": ["1e9"], "priority": ["1e9"], "scale": ["1e300"], "exchanges": ["0", "0.2"]}
REQUIRED = ("duration", "count", "rate", "points")


def _values(line_value: str, key: str) -> list[str]:
    out = [v for v in BAD_ANYWHERE if not (line_value.startswith('"') and v.startswith('"'))]
    return out + LIMITED.get(key, [])


def scenario_mutations(n: int, seed: int = 19) -> list[tuple[str, bytes]]:
    """``n`` malformed scenario files: (description, bytes), from the shipped ones."""
    rng = random.Random(seed)
    texts = {name: (ROOT / "scenarios" / f"{name}.toml").read_text() for name in SHIPPED}
    cases: list[tuple[str, bytes]] = []
    while len(cases) < n:
        name = rng.choice(SHIPPED)
        lines = texts[name].splitlines()
        slots = [i for i, ln in enumerate(lines) if ASSIGNMENT.match(ln) and ln.split("=")[0].strip()
                 not in ("name", "description", "kind") and not ln.rstrip().endswith('"""')
                 and not ln.rstrip().endswith("\\")]
        kind = rng.choices(["value", "unknown", "remove", "toml", "bytes"], weights=[70, 8, 6, 8, 8])[0]
        if kind == "value":
            i = rng.choice(slots)
            m = ASSIGNMENT.match(lines[i])
            assert m is not None
            value = rng.choice(_values(m["value"], m["key"]))
            lines[i] = f"{m['indent']}{m['key']} = {value}"
            what = f"{name}: {m['key']} = {value}"
        elif kind == "unknown":
            headers = [i for i, ln in enumerate(lines) if ln.startswith("[")]
            i = rng.choice(headers)
            lines.insert(i + 1, "colour_of_the_sky = 1")
            what = f"{name}: unknown key under {lines[i]}"
        elif kind == "remove":  # a required key (a shift's count is optional: the shift is everyone)
            def table_of(i: int) -> str:
                return next((ln for ln in reversed(lines[:i]) if ln.startswith("[")), "")

            wanted = [i for i in slots if lines[i].split("=")[0].strip() in REQUIRED and "shifts" not in table_of(i)]
            if not wanted:
                continue
            i = rng.choice(wanted)
            what = f"{name}: removed {lines[i].strip()}"
            del lines[i]
        elif kind == "toml":
            i = rng.choice(slots)
            lines[i] = rng.choice([lines[i] + " = =", lines[i].split("=")[0] + "=", "[unclosed", lines[i] + "\n" + lines[i]])
            what = f"{name}: broken TOML at line {i + 1}"
        else:
            data = "\n".join(lines).encode()
            at = rng.randrange(len(data))
            data = data[:at] + rng.choice([b"\xff", b"\xe9", b"\xc3\x28", b"\x80\x80"]) + data[at:]
            cases.append((f"{name}: non-UTF-8 byte at offset {at}", data))
            continue
        cases.append((what, ("\n".join(lines) + "\n").encode()))
    return cases


#: (command line, the option the one line must name); load tests get a closed port via $DATABASE_URL
CLI_CASES: list[tuple[list[str], str]] = [
    *[(["run", "baseline", "--seed", v], "--seed") for v in ("-1", "4294967296", "1.5", "seven", "")],
    *[(["compare", "baseline", "--policies", "legacy", "--seeds", v], "--seeds")
      for v in ("x", "5-1", "1-99999", "4294967295-4294967296", "1,,x")],
    *[(["run", "baseline", "--duration", v], "--duration") for v in ("-5", "0", "nan", "inf", "1e300", "long")],
    *[(["run", "baseline", "--warmup", v], "warmup") for v in ("-1", "soon", "nan", "1e9")],
    *[(["run", "baseline", "--service-level-t", v], "--service-level-t") for v in ("-1", "nan", "x")],
    *[(["run", "baseline", "--stuck-after", v], "--stuck-after") for v in ("0", "-3", "nan")],
    *[(["run", "baseline", "--policy", v], v) for v in ("fastest", "LEGACY", "")],
    *[(["run", "baseline", "--set", v], "--set" if "=" not in v or "," in v else v.split("=")[0].split(".")[-1])
      for v in ("operators.count", "=3", "operators.count=2,3", "operators.colour=1", "operators.count=0",
                "duration=-1", "users.arrivals.rate=1e12", "policy.mode=sideways", "9lives=1")],
    *[(["run", "baseline", opt], opt) for opt in ("--sed", "--seeds-of-doubt", "--out-dir", "--polcy")],
    (["run", "baseline", "--jobs", "0"], "--jobs"),
    (["compare", "baseline", "--precision", "2"], "--precision"),
    (["compare", "baseline", "--max-seeds", "1"], "--max-seeds"),
    (["compare", "baseline", "--baseline", "nobody", "--seeds", "1-2"], "--baseline"),
    (["sweep", "baseline", "--set", "operators.count=1e9"], "operators.count"),
    (["sweep", "baseline", "--seeds", "-3"], "--seeds"),
    (["gate", "baseline", "--min-jain", "2"], "--min-jain"),
    (["gate", "baseline", "--max-repeat-rate", "lots"], "--max-repeat-rate"),
    (["gate", "baseline", "--seed", "-1"], "--seed"),
    (["gate", "README"], "event log"),
    (["staff", "baseline", "--target-sl", "1.5", "--within", "60"], "--target-sl"),
    (["staff", "baseline", "--target-sl", "0.8", "--within", "-1"], "--within"),
    (["staff", "baseline", "--target-sl", "0.8", "--within", "60", "--set", "operators.tabs=0"], "operators.tabs"),
    (["staff", "baseline", "--within", "60"], "--target-sl"),
    *[(["loadtest", "baseline", opt, v], opt) for opt, v in (
        ("--time-scale", "0"), ("--time-scale", "nan"), ("--run-time", "0"), ("--users", "0"), ("--users", "9999"),
        ("--web-port", "80"), ("--seed", "-1"), ("--database-url", "notaurl"), ("--warmup", "-1"),
        ("--local-workers", "2"), ("--target", "no_such_target.toml"))],
    (["loadtest", "baseline", "--set", "operators.count=0"], "operators.count"),
    (["compare-real", "baseline", "--policies", "legacy,bogus"], "bogus"),
    (["compare-real", "baseline", "--seeds", "1-2", "--seed", "3"], "--seed"),
    (["compare-real", "baseline", "--set", "users.arrivals.rate=-1"], "rate"),
    (["bugs", "--only", "cw-99"], "--only"),
    (["db", "frobnicate"], "ACTION"),
    (["db", "migrate", "--schema", "x; DROP TABLE chats"], "schema"),
    (["frobnicate"], "frobnicate"),
]


def check(argv: list[str], out: Path, capsys: pytest.CaptureFixture, must_name: str) -> str | None:
    """None when ``argv`` is one clear line, exit 2, nothing written; else what went wrong."""
    try:
        code = main(argv)
    except SystemExit as exc:  # main must return, never exit
        code = f"SystemExit({exc.code})"  # type: ignore[assignment]
    except BaseException as exc:  # noqa: BLE001 - a traceback is exactly what this test hunts
        return f"raised {type(exc).__name__}: {exc}"
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if code != 2:
        return f"exit {code}: {lines[-1:] if lines else 'no message'}"
    if "Traceback" in err or len(lines) != 1:
        return f"{len(lines)} lines on stderr: {lines[:3]}"
    if must_name not in lines[0]:
        return f"the line does not name {must_name!r}: {lines[0]}"
    if out.exists():
        return f"{out} was written"
    return None


def test_fuzzed_scenario_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    cases = scenario_mutations(150)
    assert len(cases) >= 100 and len({data for _, data in cases}) >= 100  # at least 100 distinct files
    monkeypatch.chdir(tmp_path)
    failures = []
    for k, (what, data) in enumerate(cases):
        path = tmp_path / f"fuzz{k}.toml"
        path.write_bytes(data)
        problem = check(["run", str(path), "--duration", "60", "--no-progress", "--out", str(tmp_path / "out")],
                        tmp_path / "out", capsys, path.name)
        if problem:
            failures.append(f"{what}: {problem}")
            shutil.rmtree(tmp_path / "out", ignore_errors=True)  # one miss, not every later case
        path.unlink()
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures)
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a mistake wrote into the working directory"


def test_fuzzed_command_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1:1/closed?connect_timeout=2")
    monkeypatch.setenv("CHATLAB_DATA_DIR", str(tmp_path / "lab"))
    rng = random.Random(19)
    cases = list(CLI_CASES)
    for _ in range(30):  # random unknown options and stray values on random commands
        command = rng.choice(["run", "compare", "sweep", "gate", "staff", "loadtest", "compare-real", "report"])
        junk = "--" + "".join(rng.choice("abcdefxyz-") for _ in range(rng.randint(3, 9))).strip("-") + "q"
        needed = ["--target-sl", "0.8", "--within", "60"] if command == "staff" else []
        cases.append(([command, "baseline", *needed, junk], junk))
    assert len(cases) >= 100
    failures = []
    for argv, must_name in cases:
        argv = [str(ROOT / "README.md") if a == "README" else a for a in argv]
        if argv[0] in {"run", "compare", "sweep", "gate", "loadtest", "compare-real", "staff", "bugs"}:
            argv += ["--no-progress", "--out", str(tmp_path / "out")] + (
                ["--duration", "60"] if argv[0] in {"run", "compare", "sweep", "gate"} and "--duration" not in argv
                else [])
        problem = check(argv, tmp_path / "out", capsys, must_name)
        if problem:
            failures.append(f"{' '.join(argv)}: {problem}")
            shutil.rmtree(tmp_path / "out", ignore_errors=True)
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures)
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a mistake wrote or started something"


@pytest.mark.parametrize("argv", [
    ["run", "baseline", "--seed", "-1"],
    ["run", "SCENARIO"],
    ["compare", "baseline", "--bogus-option"],
])
def test_real_processes_print_one_line(argv: list[str], tmp_path: Path) -> None:
    """The same through a real interpreter: the real stderr, the real exit status."""
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"duration = 60\n\xff\xfe = 1\n")
    argv = [str(bad) if a == "SCENARIO" else a for a in argv] + ["--out", str(tmp_path / "out")]
    proc = subprocess.run([sys.executable, "-m", "chatlab.cli", *argv], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"chatlab {argv[0]}: error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]
