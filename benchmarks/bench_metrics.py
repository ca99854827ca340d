"""How long the metrics and reports take on a long event log, as ratios to a same-run baseline.

Baseline: one pandas pass over the same log (sort by time + value counts per operator), the
least any metric could cost.  Reported: compute_metrics, analyse (metrics + every table),
write_run_report without and with plots.  Run: ``.venv/bin/python benchmarks/bench_metrics.py [CHATS] [--operators N] [--gap S]``
(the floor day of issue 16: ``288000 --operators 500 --gap 0.3``, a day of 3.33 chats/s on 500 operators).
The log is synthetic (no SimPy) so the benchmark measures the metrics code only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatlab import metrics as M  # noqa: E402
from chatlab.report import write_run_report  # noqa: E402
from sim.eventlog import from_records  # noqa: E402

W, A, R, C = "waiting_assignment", "assigned", "waiting_real_user_reply", "completed"


def synthetic_log(chats: int, operators: int = 20, seed: int = 0, gap: float = 10.0):
    """Chats arriving every ~``gap`` s, 1-4 exchanges each, served by random operators."""
    rng = np.random.default_rng(seed)
    rows = []
    for op in range(1, operators + 1):
        rows.append((0.0, None, op, "operator_online", None, None, None))
    t = 0.0
    for chat in range(1, chats + 1):
        t += float(rng.exponential(gap))
        s, state = t, None
        rows.append((s, chat, None, "user_message", state, W, None))
        state = W
        for _ in range(int(rng.integers(1, 5))):
            op = int(rng.integers(1, operators + 1))
            s += float(rng.exponential(20.0))
            rows.append((s, chat, op, "assign", state, A, None))
            s += float(rng.exponential(30.0))
            rows.append((s, chat, op, "operator_reply", A, R, None))
            s += float(rng.exponential(40.0))
            rows.append((s, chat, None, "user_message", R, W, None))
            state = W
        rows.append((s + 1.0, chat, None, "end", state, C, "resolved"))
    duration = max(r[0] for r in rows) + 1.0
    return from_records(rows, {"duration": duration, "scenario": "bench", "policy": "synthetic", "seed": seed})


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("chats", nargs="?", type=int, default=20_000)
    ap.add_argument("--operators", type=int, default=20)
    ap.add_argument("--gap", type=float, default=10.0, help="mean seconds between arrivals (default 10)")
    args = ap.parse_args()
    chats, operators = args.chats, args.operators
    log = synthetic_log(chats, operators, gap=args.gap)
    base = best_of(lambda: log.sort_values("time", kind="stable")["operator_id"].value_counts())
    results = {
        "compute_metrics": best_of(lambda: M.compute_metrics(log)),
        "analyse": best_of(lambda: M.analyse(log)),
    }
    run = M.analyse(log)
    with tempfile.TemporaryDirectory() as tmp:
        results["write_run_report (no plots)"] = best_of(lambda: write_run_report(run, Path(tmp) / "a", plots=False), 1)
        results["write_run_report (plots)"] = best_of(lambda: write_run_report(run, Path(tmp) / "b"), 1)
    print(f"event log: {len(log)} rows, {chats} chats, {operators} operators; baseline (sort + value_counts) {base * 1e3:.1f} ms")
    for name, secs in results.items():
        print(f"{name:30s} {secs * 1e3:9.1f} ms  {secs / base:8.0f}x baseline  {secs / len(log) * 1e6:6.2f} µs/row")


if __name__ == "__main__":
    main()
