"""The sections and files of a calibration report (``chatlab calibrate ... --report DIR``).

The report is a comparison of two labels: ``observed`` (the period's history, rebuilt into
the event log by :mod:`chatlab.db.seedlog`) and ``calibrated`` (the calibrated scenario,
simulated with several seeds), analysed by the same metrics module.  Ahead of the usual
tables it has the fits (family, mean, sd, KS distance, AIC margins) and the observed-vs-
calibrated table: each metric's observed value, the simulations' mean and standard
deviation, the relative difference ``(calibrated - observed) / |observed|`` and
``z = (observed - mean) / (sd * sqrt(1 + 1/n))`` — how many of the simulations' own spreads
apart the two are.  "Within the noise" is the 99.9 % prediction interval of one more run of
that length: |z| <= the Student t quantile with n - 1 degrees of freedom (n seeds), so a
perfect model is flagged once in a thousand metrics whatever n is.

``calibration.json`` holds the fits and the table, ``scenario.toml`` the calibrated file;
``chatlab report DIR`` rebuilds the page from them and the event logs, byte for byte.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chatlab.metrics import Analysis, get_metric, jsonable
from chatlab.report.document import Bullets, Section, Table, Text
from chatlab.report.files import ReportError
from chatlab.report.tables import format_value

FILE_JSON, FILE_SCENARIO = "calibration.json", "scenario.toml"
OBSERVED, CALIBRATED = "observed", "calibrated"
#: a metric is outside the simulations' noise beyond this two-sided prediction level
NOISE_LEVEL = 0.999


def noise_bound(n: int) -> float:
    """|z| up to which one more run of n-seed simulations would fall with probability NOISE_LEVEL."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + NOISE_LEVEL / 2, n - 1))

#: (metric key or share statistic, label, format)
COMPARED: tuple[tuple[str, str, str], ...] = (
    ("rate.chats_per_hour", "chats per hour", "1"),
    ("wait.mean_s", "mean wait (s)", "1"),
    ("wait.p50_s", "median wait (s)", "1"),
    ("wait.p90_s", "p90 wait (s)", "1"),
    ("wait.p99_s", "p99 wait (s)", "1"),
    ("wait.abandonment_rate", "abandonment rate", "%"),
    ("assignment.repeat_rate", "repeat rate", "%"),
    ("assignment.premature_rate", "premature rate", "%"),
    ("fairness.assignments.jain", "Jain (assignments)", "3"),
    ("fairness.assignments.gini", "Gini (assignments)", "3"),
    ("share.max", "largest operator share", "%"),
    ("share.median", "median operator share", "%"),
    ("share.min", "smallest operator share", "%"),
)


def _value(run: Analysis, key: str) -> float | None:
    if key.startswith("share."):
        counts = run.per_operator["assignments"].to_numpy(dtype=float) if len(run.per_operator) else np.array([])
        if not counts.size or counts.sum() == 0:
            return None
        shares = counts / counts.sum()
        return float({"max": np.max, "median": np.median, "min": np.min}[key[6:]](shares))
    if key == "rate.chats_per_hour":
        duration = run.metrics["run"].get("duration_s") or 0
        return float(run.metrics["counts"]["chats"]) / (duration / 3600) if duration else None
    try:
        value = get_metric(run.metrics, key)
    except KeyError:
        return None
    return None if value is None or isinstance(value, bool) else float(value)


def comparison_rows(observed: Analysis, simulated: Sequence[Analysis]) -> list[dict[str, Any]]:
    """One row per compared metric (see the module docstring)."""
    rows = []
    bound = noise_bound(len(simulated)) if len(simulated) >= 2 else math.inf
    for key, label, fmt in COMPARED:
        obs = _value(observed, key)
        sims = [v for v in (_value(s, key) for s in simulated) if v is not None]
        mean = float(np.mean(sims)) if sims else None
        sd = float(np.std(sims, ddof=1)) if len(sims) >= 2 else None
        rel = None if obs is None or mean is None or obs == 0 else (mean - obs) / abs(obs)
        if obs is not None and mean is not None and obs == 0 == mean:
            rel = 0.0
        z = None
        if obs is not None and mean is not None and sd is not None:
            spread = sd * math.sqrt(1 + 1 / len(sims))
            z = 0.0 if spread == 0 and obs == mean else (None if spread == 0 else (obs - mean) / spread)
        rows.append({"key": key, "metric": label, "format": fmt, "observed": obs, "calibrated_mean": mean,
                     "calibrated_sd": sd, "relative_difference": rel, "z": z,
                     "noise_bound": bound, "within_noise": None if z is None else abs(z) <= bound})
    return rows


def _display(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    def pm(r: dict[str, Any]) -> str:
        mean = format_value(r["calibrated_mean"], r["format"])
        return mean if r["calibrated_sd"] is None else f"{mean} ± {format_value(r['calibrated_sd'], r['format'])}"

    frame = pd.DataFrame({
        "observed": [format_value(r["observed"], r["format"]) for r in rows],
        "calibrated (simulated)": [pm(r) for r in rows],
        "relative difference": ["-" if r["relative_difference"] is None else f"{100 * r['relative_difference']:+.1f}%"
                                for r in rows],
        "z": ["-" if r["z"] is None else f"{r['z']:+.2f}" for r in rows],
    }, index=[r["metric"] for r in rows])
    frame.index.name = "metric"
    return frame


def _fits(saved: dict[str, Any]) -> pd.DataFrame:
    entries = [("think time", saved.get("think_time")), ("patience", saved.get("patience")),
               ("handle time (floor)", saved.get("handle_time"))]
    if len(saved.get("groups", [])) > 1:
        entries += [(f"handle time ({g['name']})", g.get("handle")) for g in saved["groups"]]
    rows = []
    for name, fit in entries:
        if fit is None:
            rows.append({"quantity": name, "family": "-", "mean (s)": "-", "sd (s)": "-", "n": "-", "KS": "-",
                         "AIC margin": "too few observations"})
            continue
        others = sorted(c["aic"] for c in fit["candidates"] if c["family"] != fit["family"])
        margin = f"{others[0] - min(c['aic'] for c in fit['candidates']):.1f}" if others else "-"
        rows.append({"quantity": name, "family": fit["family"], "mean (s)": f"{fit['mean']:.2f}",
                     "sd (s)": f"{fit['sd']:.2f}", "n": f"{fit['n']}" + (f" ({fit['n_censored']} censored)"
                                                                         if fit["n_censored"] else ""),
                     "KS": f"{fit['ks']:.3f}", "AIC margin": margin})
    return pd.DataFrame(rows).set_index("quantity")


def sections(saved: dict[str, Any]) -> list[Section]:
    arr = saved["arrivals"]
    facts = [f"source: {saved['source']}", f"period: {saved['since']} .. {saved['until']}"
             + (f" (timestamps x {saved['time_scale']:g})" if saved["time_scale"] != 1 else ""),
             f"arrivals: {arr['chats']} chats, {arr['mean_rate']:.4g} chats/s, "
             + ("a constant rate" if arr["constant"] else f"a curve by hour of {arr['shape']}")
             + ("" if arr["chisquare_p"] is None else f" (chi-square p = {arr['chisquare_p']:.2g})")]
    if saved.get("exchanges"):
        facts.append(f"exchanges: empirical, mean {saved['exchanges']['mean']:.2f} over {saved['exchanges']['n']} chats")
    groups = ", ".join(f"{g['name']} ({len(g['operators'])} operators, max_chats {g['max_chats']})"
                       for g in saved["groups"])
    facts.append(f"groups: {groups}")
    facts += list(saved.get("notes", []))
    rows = saved["comparison"]
    outside = [r["metric"] for r in rows if r["within_noise"] is False]
    bound = next((r["noise_bound"] for r in rows if r.get("noise_bound") is not None), math.inf)
    verdict = (f"every compared metric is within the simulations' noise (|z| <= {bound:.2f}, the 99.9 % "
               "prediction interval)" if not outside else
               f"outside the simulations' noise (|z| > {bound:.2f}): {', '.join(outside)}")
    return [
        Section("Calibration", (
            Text("The scenario file `scenario.toml` was fitted from the history; each duration by maximum likelihood "
                 "(exponential, lognormal, gamma; lowest AIC wins; AIC margin = how much worse the runner-up is)."),
            Bullets(tuple(facts)), Table(_fits(saved)))),
        Section("Observed vs calibrated", (
            Text(f"The history's metrics beside the calibrated scenario's, simulated with {saved['replications']} "
                 "seeds (mean ± sd). Relative difference = (calibrated - observed) / |observed|; z = (observed - "
                 "mean) / (sd · √(1 + 1/n)). " + verdict + "."),
            Table(_display(rows)))),
    ]


def write_files(saved: dict[str, Any], scenario_text: str, out_dir: Path) -> None:
    (out_dir / FILE_JSON).write_text(json.dumps(jsonable(saved), indent=2, allow_nan=False) + "\n")
    (out_dir / FILE_SCENARIO).write_text(scenario_text)


def read_saved(out_dir: Path) -> dict[str, Any] | None:
    path = Path(out_dir) / FILE_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: cannot read ({exc})") from None
