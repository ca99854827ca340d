"""``chatlab bugs [--sim-only]``: the regression suite of real products' reported routing bugs.

For every bug of :data:`chatlab.bugs.BUGS` and every side it runs on (the simulation; the
real database under Locust, unless ``--sim-only``): the buggy variant must break the bug's
bound (*reproduced*: the lab would catch it) and the lab's behaviour must keep it
(*absent*).  Prints the table, writes it to ``--out`` (``summary.md``, ``summary.html``,
``bugs.json``) and exits 0 only when every row passes, 1 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from chatlab.commands import common


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sim-only", action="store_true",
                        help="skip the database rows (the races only PostgreSQL can show); much faster")
    parser.add_argument("--only", default=None, metavar="KEYS",
                        help="comma-separated bug keys to run (default: all; see the table's first column)")
    parser.add_argument("--seed", type=int, default=None, metavar="N", help="random seed (default: each scenario's)")
    parser.add_argument("--database-url", default=None, metavar="URL",
                        help="PostgreSQL for the database rows (default: $DATABASE_URL, else a temporary embedded server)")
    common.add_parallel_arguments(parser)
    parser.add_argument("--db-jobs", type=int, default=2, metavar="N",
                        help="database rows' load tests run at once, each on its own temporary server (default 2); "
                             "on a named server (--database-url, $DATABASE_URL) they run one at a time")
    parser.add_argument("--out", type=Path, default=Path("reports") / "bugs", metavar="DIR",
                        help="where the table goes (default: reports/bugs)")
    common.add_progress_argument(parser)


def _selected(only: str | None) -> list[Any]:
    from chatlab.bugs import BUGS

    if only is None:
        return list(BUGS)
    keys = [k.strip() for k in only.split(",") if k.strip()]
    known = {b.key: b for b in BUGS}
    unknown = [k for k in keys if k not in known]
    if not keys or unknown:
        raise common.UsageError(f"--only: unknown bug key(s) {', '.join(unknown) or '(none given)'}; "
                                f"expected some of: {', '.join(known)}")
    return [known[k] for k in keys]


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def table(rows: list[Any]) -> Any:
    import pandas as pd

    frame = pd.DataFrame([{
        "bug": f"{r.bug.key}: {r.bug.title}",
        "source": r.bug.source,
        "where": r.where,
        "bound": r.bug.bound,
        "variant": f"{r.bug.describe('variant')} = {_fmt(r.variant.value)}",
        "variant result": "reproduced" if r.reproduced else "NOT reproduced",
        "lab": f"{r.bug.describe('lab')} = {_fmt(r.lab.value)}",
        "lab result": "absent" if r.absent else "PRESENT",
        "row": "PASS" if r.passed else "FAIL",
    } for r in rows])
    return frame.set_index("bug")


def terminal_table(rows: list[Any]) -> Any:
    """The table for the terminal: the same verdicts, narrower."""
    import pandas as pd

    frame = pd.DataFrame([{
        "bug": r.bug.key, "where": r.where, "bound": r.bug.bound,
        "variant": f"{_fmt(r.variant.value)} {'reproduced' if r.reproduced else 'NOT reproduced'}",
        "lab": f"{_fmt(r.lab.value)} {'absent' if r.absent else 'PRESENT'}",
        "row": "PASS" if r.passed else "FAIL", "source": r.bug.source,
    } for r in rows])
    return frame.set_index("bug")


def _write(rows: list[Any], out: Path, facts: tuple[tuple[str, str], ...]) -> None:
    from chatlab.report.document import Document, Section, Table, Text, write_document

    frame = table(rows)
    passed = sum(r.passed for r in rows)
    doc = Document("Reported routing bugs: reproduced by their variants, absent under the lab", facts, (
        Section("Result", (Text(f"**{passed} of {len(rows)} rows pass**: each buggy variant breaks its bound "
                                "(reproduced) and the lab keeps it (absent)."), Table(frame))),
        Section("How to read it", (Text("Each bug is a scenario (`scenarios/bug_*.toml`), a variant that "
                                        "reproduces the report (`sim/variants.py`, or the lab without one of its "
                                        "rules) and a bound on a `metrics.json` key (`guarantees.*`, what "
                                        "`chatlab gate --max-…` checks). `sim` rows are simulated, `db` rows are "
                                        "Locust load tests against PostgreSQL judged from its history."),)),
    ))
    write_document(doc, out)
    (out / "bugs.json").write_text(json.dumps([{
        "key": r.bug.key, "source": r.bug.source, "title": r.bug.title, "where": r.where, "scenario": r.bug.scenario,
        "metric": r.bug.metric, "limit": r.bug.limit, "variant": r.bug.describe("variant"),
        "variant_value": r.variant.value, "reproduced": r.reproduced, "lab": r.bug.describe("lab"),
        "lab_value": r.lab.value, "absent": r.absent, "passed": r.passed} for r in rows], indent=2) + "\n")


def main(args: argparse.Namespace) -> int:
    from chatlab.bugs import run_dbs, run_sims
    from chatlab.bugs.runner import db_slots
    from chatlab.replications import check_jobs
    from chatlab.report.tables import text_table
    from sim.scenario import load_scenario

    bugs = _selected(args.only)
    for bug in bugs:  # every scenario loads before anything runs (bad input: exit 2, nothing written)
        load_scenario(bug.scenario)
    jobs = [(b, w) for b in bugs for w in b.where if w == "sim" or not args.sim_only]
    if not jobs:
        raise common.UsageError("--sim-only with --only: the chosen bugs run on the database only")
    started = time.monotonic()
    check_jobs(args.jobs)
    if args.db_jobs < 1:
        raise common.UsageError(f"--db-jobs: expected a whole number >= 1, got {args.db_jobs}")
    bar = common.progress_bar(len(jobs), "bugs", disable=args.no_progress, unit="row")
    # the simulation rows together, on every core (each row is two simulations); then the database rows
    sim_bugs = [bug for bug, where in jobs if where == "sim"]
    sim_rows = iter(run_sims(sim_bugs, args.seed, jobs=args.jobs, dask=args.dask,
                             on_done=lambda i, rep: bar.update(0.5)) if sim_bugs else [])
    db_bugs = [bug for bug, where in jobs if where == "db"]
    at_once = db_slots(args.database_url, args.db_jobs)
    if db_bugs:
        bar.set_postfix_str(f"{len(db_bugs)} on the database, {at_once} at a time")
    db_rows = iter(run_dbs(db_bugs, args.out / "runs", seed=args.seed, database_url=args.database_url,
                           jobs=args.db_jobs, on_done=lambda: bar.update(0.5)) if db_bugs else [])
    rows = [next(sim_rows) if where == "sim" else next(db_rows) for bug, where in jobs]
    bar.close()
    wall = time.monotonic() - started
    facts = (("rows", str(len(rows))), ("sides", "simulation only" if args.sim_only else "simulation and database"),
             ("seed", "each scenario's" if args.seed is None else str(args.seed)),
             *((("database load tests at once", str(at_once)),) if db_bugs else ()), ("wall time", f"{wall:.0f} s"))
    _write(rows, args.out, facts)
    print(text_table(terminal_table(rows)))
    passed = sum(r.passed for r in rows)
    print(f"{passed} of {len(rows)} rows pass ({wall:.0f} s); table: {args.out / 'summary.md'}")
    return 0 if passed == len(rows) else 1
