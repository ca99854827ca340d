"""The staffing report of ``chatlab staff``: a table, ``staff.csv`` / ``staff.json``, a plot and a page.

Takes the plan as data (its ``to_dict()``), like every other section.  The plot draws the
staff per interval — Erlang's start and the simulated plan — as steps against the offered
load (Erlangs, second axis), readable at any floor size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from chatlab.metrics import jsonable
from chatlab.report.document import Bullets, Document, Images, Section, Table, Text, write_document
from chatlab.report.plots import _figure, _save


def table(plan: dict[str, Any]) -> pd.DataFrame:
    def pct(x: Any) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    rows = [{"interval": f"{iv['start'] / 3600:g}-{iv['end'] / 3600:g} h", "chats/s": f"{iv['arrival_rate']:.4f}",
             "load (Erlangs)": f"{iv['offered_load']:.2f}", "Erlang staff": iv["erlang_staff"],
             "Erlang SL": pct(iv["erlang_sl"]), "staff": iv["staff"], "simulated SL": pct(iv["sim_sl"]),
             "abandoned": pct(iv["sim_abandonment"])} for iv in plan["intervals"]]
    return pd.DataFrame(rows).set_index("interval")


def plot(plan: dict[str, Any], path: Path) -> Path:
    fig = _figure(9.0, 4.5)
    ax = fig.subplots()
    ivs = plan["intervals"]
    edges = [iv["start"] / 3600 for iv in ivs] + [ivs[-1]["end"] / 3600]
    for key, label, style in (("erlang_staff", "Erlang A start", "--"), ("staff", "simulated plan", "-")):
        values = [iv[key] for iv in ivs]
        ax.stairs(values, edges, label=label, linestyle=style, linewidth=2)
    ax.set(xlabel="scenario time (h)", ylabel="operators on shift",
           title=f"Staff for {100 * plan['target_sl']:g} % within {plan['within']:g} s: {plan['scenario']}")
    ax.grid(alpha=0.3)
    load = ax.twinx()
    load.stairs([iv["offered_load"] for iv in ivs], edges, color="grey", alpha=0.5, label="offered load")
    load.set_ylabel("offered load (Erlangs)")
    lines = ax.get_legend_handles_labels()
    extra = load.get_legend_handles_labels()
    ax.legend(lines[0] + extra[0], lines[1] + extra[1], fontsize="small", loc="upper left")
    return _save(fig, path)


def write_staff_report(plan_obj: Any, out_dir: Path) -> pd.DataFrame:
    plan = jsonable(plan_obj.to_dict())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = table(plan)
    pd.DataFrame(plan["intervals"]).to_csv(out_dir / "staff.csv", index=False)
    (out_dir / "staff.json").write_text(json.dumps(plan, indent=2, allow_nan=False) + "\n")
    plot(plan, out_dir / "staff.png")
    facts = (("scenario", plan["scenario"]), ("target", f"{100 * plan['target_sl']:g} % within {plan['within']:g} s"),
             ("max abandonment", "-" if plan["max_abandonment"] is None else f"{100 * plan['max_abandonment']:g} %"),
             ("seeds per round", ",".join(map(str, plan["seeds"]))), ("rounds", str(plan["rounds"])),
             ("settled", "yes" if plan["met"] else "no"))
    write_document(Document(f"Staffing: {plan['scenario']}", facts, (
        Section("Staff per interval", (
            Text("Erlang A (Erlang C without abandonment) at each interval's offered load gives the start; the plan is "
                 "simulated (operators on shift only where needed) and corrected one operator at a time until every "
                 "interval meets the target with as few as it can."),
            Table(frame), Bullets(tuple(plan["notes"])), Images(("staff.png",)))),)), out_dir)
    return frame
