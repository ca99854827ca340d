"""The sections every report is made of, built from analysed runs (and nothing else).

Each function returns :class:`~chatlab.report.document.Section` data; the writer
(``chatlab/report/writer.py``) puts them in order, and other layers' results come in as
sections too (``loadtest_section.py``, ``sim_vs_db.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chatlab.metrics import Analysis
from chatlab.report.document import Images, Links, Section, Table, Text
from chatlab.report.tables import CLASS_ROWS, GROUP_ROWS, section_rows, summary_table

DEFINITIONS = ("Definitions of every metric: `metrics.json` keys are documented in the README "
               "(\"Metrics and reports\") and `docs/semantics.md`. Waits exclude censored waits "
               "(abandoned or still open).")


def run_facts(runs: Sequence[Analysis]) -> tuple[tuple[str, str], ...]:
    """The header list: scenario, sources, mode, duration, thresholds (and policy/seed of a single run)."""
    info = runs[0].metrics["run"]

    def every(key: str) -> str | None:
        """All distinct values over the runs (a sim-vs-load-test report has two sources)."""
        values = [str(v) for v in dict.fromkeys(r.metrics["run"].get(key) for r in runs) if v is not None]
        return ", ".join(values) or None

    params = runs[0].metrics["params"]
    items: list[tuple[str, Any]] = [
        ("scenario", every("scenario")), ("source", every("source")), ("mode", every("mode")),
        ("duration", f"{info['duration_s']:g} s"), ("service level T", f"{params['service_level_t_s']:g} s"),
        ("stuck after", f"{params['stuck_after_s']:g} s")]
    if len(runs) == 1:
        items[1:1] = [("policy", info.get("policy")), ("seed", info.get("seed"))]
    items.insert(items.index(("duration", f"{info['duration_s']:g} s")) + 1, ("warm-up cut", warmup_text(runs)))
    return tuple((k, str(v)) for k, v in items if v not in (None, "None"))


def warmup_text(runs: Sequence[Analysis]) -> str | None:
    """What the runs' metrics leave out at the start, and how it was chosen (None: nothing)."""
    cuts = [float(r.metrics["run"].get("warmup_s") or 0.0) for r in runs]
    methods = {r.metrics["run"].get("warmup_method") for r in runs} - {None}
    if not methods and not any(cuts):
        return None
    how = {"mser5": "chosen per run by MSER-5", "fixed": "fixed"}
    said = ", ".join(how.get(str(m), str(m)) for m in sorted(methods, key=str))
    span = f"{min(cuts):.0f} s" if round(min(cuts)) == round(max(cuts)) else f"{min(cuts):.0f}–{max(cuts):.0f} s"
    if any(r.seeds for r in runs) and "mser5" in methods:
        span += " (each column's mean over its seeds)"
    return (f"the first {span} of scenario time left out of every metric ({said}): waits and chats that began "
            "before it, and the events before it, are not counted; stays and online time in progress count from it")


def key_metrics(runs: Sequence[Analysis]) -> Section:
    return Section("Key metrics", (Table(summary_table(runs)), Text(DEFINITIONS)))


def floor(runs: Sequence[Analysis]) -> tuple[Section | None, ...]:
    """"Per group", "Per topic" and "Per priority class", for a floor that has more than one."""
    def section(name: str, title: str, rows: Sequence[tuple[str, str, str]], prefix: str = "") -> Section | None:
        names = {n for r in runs for n in (r.metrics.get(name) or {})}
        if len(names) < 2:
            return None
        return Section(title, (Table(summary_table(runs, section_rows(runs, name, rows, prefix))),))

    return (section("groups", "Per group", GROUP_ROWS), section("topics", "Per topic", CLASS_ROWS),
            section("priorities", "Per priority class", CLASS_ROWS, prefix="class "))


def per_operator(run: Analysis) -> Section:
    return Section("Per operator", (Table(run.per_operator.set_index("operator_id")),))


def run_links(subdirs: Sequence[str]) -> Section:
    return Section("Runs", (Links(tuple(subdirs)),))


def plots(images: Sequence[str]) -> Section:
    return Section("Plots", (Images(tuple(images)),))


def present(*sections: Section | None) -> tuple[Section, ...]:
    """The sections that exist (a report without plots has no "Plots" section, ...)."""
    return tuple(s for s in sections if s is not None and s.blocks and not _empty(s))


def _empty(section: Section) -> bool:
    return all(isinstance(b, (Images, Links)) and not (b.paths if isinstance(b, Images) else b.dirs)
               for b in section.blocks)
