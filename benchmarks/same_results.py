"""Do two versions of the simulation give the same results?  Fingerprints of every shipped
scenario x every policy (and the scenario's own policy, e.g. a buggy variant).

Why: a speed-up of the model (waking operators on change instead of polling, indexed queues)
must not change what the model does: the same seed must give the same event log, row for
row, and so the same metrics.  Run it once against the old code to write the reference and
once against the new code to compare:

    PYTHONPATH=<old tree> .venv/bin/python benchmarks/same_results.py --write /tmp/ref.json
    PYTHONPATH=<new tree> .venv/bin/python benchmarks/same_results.py --check /tmp/ref.json

Each fingerprint is the SHA-256 of the event log as CSV (every column, every row, in order)
plus a few headline metrics, so a difference also shows what moved.  ``--check`` prints one
line per differing run and exits 1 when any differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from chatlab.metrics import compute_metrics
from sim.model import run_simulation
from sim.policies import POLICY_NAMES
from sim.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
HEADLINE = ("counts", "wait")  # the metrics sections printed when a run differs


def fingerprint(scenario: str, policy: str) -> dict[str, object]:
    log = run_simulation(scenario, policy)
    metrics = compute_metrics(log)
    digest = hashlib.sha256(log.to_csv(index=False).encode()).hexdigest()
    text = json.dumps(metrics, sort_keys=True, default=str)
    return {"rows": len(log), "sha256": digest, "metrics_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "metrics": {k: metrics.get(k) for k in HEADLINE}}


def runs() -> list[tuple[str, str]]:
    out = []
    for path in sorted(SCENARIOS.glob("*.toml")):
        sc = load_scenario(path.stem)
        for policy in dict.fromkeys((*POLICY_NAMES, sc.policy.name)):
            out.append((path.stem, policy))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, help="write the fingerprints to this JSON file")
    group.add_argument("--check", type=Path, help="compare with the fingerprints in this JSON file")
    ap.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    args = ap.parse_args()
    only = {s for s in args.only.split(",") if s}
    t0 = time.perf_counter()
    result = {f"{s}/{p}": fingerprint(s, p) for s, p in runs() if not only or s in only}
    wall = time.perf_counter() - t0
    if args.write:
        args.write.write_text(json.dumps(result, indent=1, sort_keys=True))
        print(f"wrote {len(result)} fingerprints to {args.write} in {wall:.1f} s")
        return 0
    reference = json.loads(args.check.read_text())
    differ = 0
    for key, got in result.items():
        want = reference.get(key)
        if want is None:
            print(f"{key}: not in the reference")
            differ += 1
        elif want["sha256"] != got["sha256"] or want["metrics_sha256"] != got["metrics_sha256"]:
            differ += 1
            what = "event log" if want["sha256"] != got["sha256"] else "metrics only (event log identical)"
            print(f"{key}: DIFFERENT {what}: rows {want['rows']} -> {got['rows']}; metrics {want['metrics']} -> {got['metrics']}")
    print(f"{len(result) - differ} of {len(result)} runs identical to {args.check} ({wall:.1f} s)")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
