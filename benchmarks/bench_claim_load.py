"""The real assign function under sustained load, against bare SQL doing the same work (issue 17).

One *cycle* = claim, operator reply, user reply: three round trips, driven by pgbench (shipped
with the embedded PostgreSQL), so the client overhead is the same C loop for both sides.
``claim_load/project.pgbench`` calls the project's functions; ``claim_load/bare.pgbench``
writes the same rows with one plain statement per step (no function, no checks, no operator
lock).  Both run on the same schema, in the same server, alternating, and every figure below
is a ratio measured in one run (this box is shared: absolute rates drift, ratios hold).

Measured (each on its own freshly filled schema unless said otherwise):

* ``ratio16``, ``ratio64``: project / bare cycles/s at 16 and 64 clients, ``exclude_last``,
  ``--rounds`` alternating pairs of ``--seconds`` each; p50/p99 latency of a cycle;
* every policy with 500 operators online (16 clients play 16 of them), alternating with
  ``exclude_last``: ``slowest_policy_over_exclude_last_at_500`` = the largest cost ratio
  (exclude_last cycles/s over the policy's);
* soak: ``--soak-seconds`` at 16 clients, cycles/s per 10-s window, worst over best;
* adversarial head: one client whose operator last answered the ``--head`` oldest chats,
  against the same queue without that head: ``adversarial_over_normal`` = cost ratio;
* flat: the claim with ``--stored-small`` vs ``--stored`` completed chats in the table.

    .venv/bin/python benchmarks/bench_claim_load.py                      # ~5 min, 60-s soak
    .venv/bin/python benchmarks/bench_claim_load.py --soak-seconds 120 --stored 1000000

Uses ``DATABASE_URL`` if set, else a temporary embedded server (stopped afterwards).  The last
line is ``ratio16=.. ratio64=.. soak_worst_over_best=.. adversarial_over_normal=..
slowest_policy_over_exclude_last_at_500=..``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from chatlab.db.migrate import drop_schema, migrate  # noqa: E402
from chatlab.db.queries import query  # noqa: E402
from chatlab.db.server import _bin_path, temporary_server  # noqa: E402
from sim.policies import POLICY_NAMES  # noqa: E402

HERE = Path(__file__).resolve().parent / "claim_load"
OPERATORS = 500


def _sql(name: str) -> str:
    return (HERE / f"{name}.sql").read_text()


@contextlib.contextmanager
def _server():
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
    else:
        with temporary_server(prefix="chatlab-bench-") as uri:
            yield uri


@dataclass
class Schema:
    """One filled chat schema: ``queue`` waiting chats, ``stored`` completed ones, 500 operators."""

    uri: str
    name: str
    op0: int = 0

    @classmethod
    def fill(cls, uri: str, *, queue: int, stored: int = 0, head: int = 0) -> Schema:
        schema = cls(uri, f"bench_{uuid.uuid4().hex[:10]}")
        migrate(uri, schema.name)
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(query("set_search_path", schema=schema.name))
            schema.op0 = conn.execute(_sql("fill_operators"), {"n": OPERATORS}).fetchone()[0]
            conn.execute(_sql("replica_on"))
            if stored:
                conn.execute(_sql("fill_stored"), {"n": stored})
            conn.execute(_sql("fill_queue"), {"first": stored + 1, "last": stored + queue, "head": head,
                                              "head_operator": schema.op0})
            conn.execute(_sql("replica_off"))
            conn.execute(_sql("after_fill"))
            conn.execute(_sql("vacuum"))
        return schema

    def drop(self) -> None:
        drop_schema(self.uri, self.name)

    def verify(self) -> None:
        """The seed's checks after a run: no chat to two operators, capacity, the event log."""
        from chatlab.db.client import ChatDB

        with ChatDB(self.uri, self.name) as db:
            failed = [c.name for c in db.verify() if not c.passed]
        if failed:
            raise SystemExit(f"verification failed after the run in {self.name}: {failed}")


@dataclass
class Result:
    """One pgbench run: cycles/s and each cycle's latency (ms), with its start time (s)."""

    cps: float
    latencies: list[float]
    starts: list[float]

    def pct(self, q: float) -> float:
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

    def windows(self, width: float) -> list[float]:
        """Cycles/s per ``width``-second window (complete windows only)."""
        if not self.starts:
            return []
        t0 = min(self.starts)
        n = int((max(self.starts) - t0) // width)
        counts = [0] * n
        for t in self.starts:
            k = int((t - t0) // width)
            if k < n:
                counts[k] += 1
        return [c / width for c in counts]


def pgbench(schema: Schema, script: str, clients: int, seconds: float, policy: str = "exclude_last") -> Result:
    """Run ``claim_load/<script>.pgbench`` for ``seconds`` with ``clients`` connections."""
    with tempfile.TemporaryDirectory(prefix="chatlab-pgbench-") as tmp:
        cmd = [str(_bin_path() / "pgbench"), "-n", "-M", "prepared", "-c", str(clients),
               "-j", str(min(clients, 2)), "-T", str(int(seconds)), "-f", str(HERE / f"{script}.pgbench"),
               "-D", f"op0={schema.op0}", "-D", f"policy={policy}", "-l", f"--log-prefix={tmp}/tx", schema.uri]
        env = {**os.environ, "PGOPTIONS": f"-c search_path={schema.name}"}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 120)
        if done.returncode != 0 or "number of failed transactions: 0 (" not in done.stdout:
            raise SystemExit(f"pgbench {script} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
        latencies, starts = [], []
        for log in Path(tmp).glob("tx*"):
            for line in log.read_text().splitlines():
                f = line.split()
                latencies.append(int(f[2]) / 1000)
                starts.append(int(f[4]) + int(f[5]) / 1e6 - int(f[2]) / 1e6)
    return Result(len(latencies) / seconds, latencies, starts)


def _merge(results: list[Result]) -> Result:
    return Result(statistics.fmean(r.cps for r in results), [x for r in results for x in r.latencies],
                  [x for r in results for x in r.starts])


def alternate(schema: Schema, a: tuple[str, str], b: tuple[str, str], clients: int, seconds: float,
              rounds: int) -> tuple[Result, Result]:
    """(script, policy) ``a`` then ``b``, ``rounds`` times: their merged results."""
    ra, rb = [], []
    for _ in range(rounds):
        ra.append(pgbench(schema, a[0], clients, seconds, a[1]))
        rb.append(pgbench(schema, b[0], clients, seconds, b[1]))
    return _merge(ra), _merge(rb)


def _row(label: str, r: Result, base: Result | None = None) -> str:
    ratio = f"{r.cps / base.cps:>7.2f}x" if base else f"{'':>8}"
    return f"  {label:<28} {r.cps:>9.0f} {r.pct(0.5):>8.2f} {r.pct(0.99):>8.2f} {ratio}"


HEADER = f"  {'':<28} {'cycles/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>8}"


def bench_ratio(uri: str, args: argparse.Namespace) -> dict[int, tuple[float, float]]:
    """Project / bare cycles/s and p99 at each client count; returns clients -> (ratio, p99 ratio)."""
    out = {}
    schema = Schema.fill(uri, queue=args.queue)
    try:
        for clients in (16, 64):
            bare, proj = alternate(schema, ("bare", "exclude_last"), ("project", "exclude_last"), clients,
                                   args.seconds, args.rounds)
            print(f"{clients} clients, exclude_last, {args.rounds} x {args.seconds:.0f} s each, alternating")
            print(HEADER)
            print(_row("bare SQL", bare))
            print(_row("project functions", proj, bare))
            print(f"  p99 project / bare: {proj.pct(0.99) / bare.pct(0.99):.2f}x")
            out[clients] = (proj.cps / bare.cps, proj.pct(0.99) / bare.pct(0.99))
        schema.verify()
    finally:
        schema.drop()
    return out


def bench_policies(uri: str, args: argparse.Namespace) -> float:
    """Every policy with 500 operators online, each alternated with exclude_last."""
    schema = Schema.fill(uri, queue=args.queue)
    worst = 0.0
    try:
        print(f"16 clients, {OPERATORS} operators online, {args.policy_seconds:.0f} s per run, "
              "each policy alternated with exclude_last")
        print(HEADER + "  (ratio = cost over exclude_last's)")
        for policy in [p for p in POLICY_NAMES if p != "exclude_last"]:
            base, r = alternate(schema, ("project", "exclude_last"), ("project", policy), 16,
                                args.policy_seconds, 1)
            cost = base.cps / r.cps
            worst = max(worst, cost)
            print(f"  {policy:<28} {r.cps:>9.0f} {r.pct(0.5):>8.2f} {r.pct(0.99):>8.2f} {cost:>7.2f}x"
                  f"   (exclude_last {base.cps:.0f})")
        schema.verify()
    finally:
        schema.drop()
    return worst


def bench_soak(uri: str, args: argparse.Namespace) -> float:
    schema = Schema.fill(uri, queue=args.queue)
    try:
        r = pgbench(schema, "project", 16, args.soak_seconds)
        w = r.windows(10.0)
        schema.verify()
    finally:
        schema.drop()
    print(f"soak: 16 clients, exclude_last, {args.soak_seconds:.0f} s; cycles/s per 10 s: "
          + " ".join(f"{x:.0f}" for x in w))
    worst_over_best = min(w) / max(w) if w else float("nan")
    print(f"  worst / best window: {worst_over_best:.2f}   p50 {r.pct(0.5):.2f} ms, p99 {r.pct(0.99):.2f} ms")
    return worst_over_best


def bench_adversarial(uri: str, args: argparse.Namespace) -> float:
    """One client; its operator last answered the ``head`` oldest chats (it may take none of them)."""
    normal_s = Schema.fill(uri, queue=args.queue)
    adv_s = Schema.fill(uri, queue=args.queue, head=args.head)
    try:
        normal, adv = [], []
        for _ in range(args.rounds):
            normal.append(pgbench(normal_s, "project", 1, args.seconds))
            adv.append(pgbench(adv_s, "project", 1, args.seconds))
        n, a = _merge(normal), _merge(adv)
        adv_s.verify()
    finally:
        normal_s.drop()
        adv_s.drop()
    print(f"adversarial head: 1 client, exclude_last, {args.head:,} oldest chats last answered by it")
    print(HEADER)
    print(_row("normal queue", n))
    print(_row("adversarial head", a, n))
    return n.cps / a.cps


def bench_flat(uri: str, args: argparse.Namespace) -> float:
    small = Schema.fill(uri, queue=args.queue, stored=args.stored_small)
    big = Schema.fill(uri, queue=args.queue, stored=args.stored)
    try:
        s, b = [], []
        for _ in range(args.rounds):
            s.append(pgbench(small, "project", 16, args.seconds))
            b.append(pgbench(big, "project", 16, args.seconds))
        rs, rb = _merge(s), _merge(b)
    finally:
        small.drop()
        big.drop()
    print(f"stored completed chats, 16 clients, exclude_last, {args.queue:,} waiting")
    print(HEADER)
    print(_row(f"{args.stored_small:,} stored", rs))
    print(_row(f"{args.stored:,} stored", rb, rs))
    return rb.cps / rs.cps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="one pgbench run (ratio, adversarial, flat)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating pairs per comparison")
    ap.add_argument("--policy-seconds", type=float, default=4.0, help="one run per policy")
    ap.add_argument("--soak-seconds", type=float, default=60.0, help="the soak (the issue's target: 120)")
    ap.add_argument("--queue", type=int, default=100_000, help="waiting chats")
    ap.add_argument("--head", type=int, default=50_000, help="the adversarial head")
    ap.add_argument("--stored-small", type=int, default=10_000)
    ap.add_argument("--stored", type=int, default=200_000, help="completed chats (the issue's: 1000000)")
    ap.add_argument("--only", default="ratio,policies,soak,adversarial,flat", help="comma-separated parts")
    args = ap.parse_args()
    parts = {p.strip() for p in args.only.split(",")}
    nan = float("nan")
    with _server() as uri:
        ratios = bench_ratio(uri, args) if "ratio" in parts else {16: (nan, nan), 64: (nan, nan)}
        worst = bench_policies(uri, args) if "policies" in parts else nan
        soak = bench_soak(uri, args) if "soak" in parts else nan
        adv = bench_adversarial(uri, args) if "adversarial" in parts else nan
        if "flat" in parts:
            print(f"  flat: {args.stored:,} over {args.stored_small:,} stored = {bench_flat(uri, args):.2f}x")
    print(f"ratio16={ratios[16][0]:.2f} ratio64={ratios[64][0]:.2f} soak_worst_over_best={soak:.2f} "
          f"adversarial_over_normal={adv:.2f} slowest_policy_over_exclude_last_at_500={worst:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
