"""One run analysed: :func:`compute_metrics` (the ``metrics.json`` numbers) and :class:`Analysis`
(those numbers plus every table a report or plot needs, computed once)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from chatlab.metrics.episodes import (
    assignments,
    idle_releases,
    state_counts_series,
    state_intervals,
    state_occupancy,
    step_mean,
    wait_episodes,
    wait_summary,
)
from chatlab.metrics.fairness import fairness_summary
from chatlab.metrics.floor import class_metrics, group_metrics, group_names
from chatlab.metrics.guarantees import guarantee_metrics
from chatlab.metrics.runlog import (
    _AS,
    _WA,
    DEFAULT_SERVICE_LEVEL_T,
    OPEN_STATES,
    _num,
    _rate,
    chat_starts,
    in_window,
    prepare,
    run_duration,
    run_info,
    shared_derivations,
    stuck_threshold,
    window_start,
)
from chatlab.metrics.schema import SCHEMA_VERSION
from chatlab.metrics.tables import per_hour, per_operator
from chatlab.metrics.warmup import resolve_warmup
from sim.errors import InvalidEventLog
from sim.statemachine import Event


@dataclass(frozen=True)
class _Parts:
    """Intermediate tables shared by :func:`compute_metrics` (computed once)."""

    per_operator: pd.DataFrame
    assignments: pd.DataFrame
    waits: pd.DataFrame
    intervals: pd.DataFrame
    state_counts: pd.DataFrame
    idle: pd.DataFrame

    @property
    def queue(self) -> pd.DataFrame:
        return self.state_counts[["time", _WA]].rename(columns={_WA: "queue_length"})


def compute_metrics(
    log: pd.DataFrame, *, service_level_t: float = DEFAULT_SERVICE_LEVEL_T, stuck_after: float | None = None
) -> dict[str, Any]:
    """All run-level metrics of one event log as a JSON-serialisable dict with stable keys.

    Sections: ``schema_version``, ``run``, ``params``, ``counts``, ``fairness``, ``wait``,
    ``assignment``, ``health``, ``guarantees``, ``occupancy``, ``groups``, ``topics``, ``priorities`` (every
    key is listed in the README and in :data:`METRIC_DOCS`).  Values that cannot be defined (e.g. p99 with no served wait) are
    ``None``, never NaN, so the JSON is strict.
    """
    with shared_derivations():
        return _metrics_and_parts(log, service_level_t=service_level_t, stuck_after=stuck_after)[0]


def _metrics_and_parts(
    log: pd.DataFrame, *, service_level_t: float, stuck_after: float | None
) -> tuple[dict[str, Any], _Parts]:
    """:func:`compute_metrics` plus the tables it was computed from (reused by :func:`analyse`)."""
    log = resolve_warmup(prepare(log))
    if service_level_t < 0 or not math.isfinite(service_level_t):
        raise InvalidEventLog(f"service level threshold must be a finite number of seconds >= 0, got {service_level_t!r}")
    duration = run_duration(log)
    threshold = stuck_threshold(log.attrs, stuck_after)
    parts = _Parts(
        per_operator=per_operator(log),
        assignments=assignments(log),
        waits=wait_episodes(log),
        intervals=state_intervals(log),
        state_counts=state_counts_series(log),
        idle=idle_releases(log),
    )
    start = window_start(log)
    window = in_window(log)
    ev = window["event"].astype(object)
    chats = int((chat_starts(log).to_numpy() >= start).sum())
    ended = window.loc[ev == Event.END.value]
    abandoned = int((ended["reason"].astype(object) == "abandoned").sum())
    counts = {
        "chats": chats,
        "assignments": int(len(parts.assignments)),
        "replies": int((ev == Event.OPERATOR_REPLY.value).sum()),
        "user_messages": int((ev == Event.USER_MESSAGE.value).sum()),
        "unassigns": int((ev == Event.UNASSIGN.value).sum()),
        "idle_releases": int((ev == Event.IDLE_RELEASE.value).sum()),
        "stuck_releases": int((ev == Event.STUCK_RELEASE.value).sum()),
        "ended": int(len(ended)),
        "resolved": int((ended["reason"].astype(object) == "resolved").sum()),
        "abandoned": abandoned,
    }
    po = parts.per_operator
    online = po.loc[po["online_s"] > 0]
    fairness = {
        "operators": int(len(po)),
        "assignments": fairness_summary(po["assignments"]),
        "replies": fairness_summary(po["replies"]),
        "assignments_per_online_hour": fairness_summary(online["assignments_per_online_hour"]),
        "replies_per_online_hour": fairness_summary(online["replies_per_online_hour"]),
        "utilisation": fairness_summary(online["utilisation"]),
    }
    wait = wait_summary(parts.waits, service_level_t)
    wait["abandoned"] = abandoned
    wait["abandonment_rate"] = _rate(abandoned, chats)
    asg = parts.assignments
    assignment = {
        "total": int(len(asg)),
        "repeat": int(asg["repeat"].sum()),
        "repeat_rate": _rate(int(asg["repeat"].sum()), len(asg)),
        "premature": int(asg["premature"].sum()),
        "premature_rate": _rate(int(asg["premature"].sum()), len(asg)),
    }
    iv = parts.intervals
    held = iv.loc[iv["state"] == _AS]
    long = held.loc[(held["end"] - held["start"]) > threshold]
    q_t, q_v = parts.queue["time"].to_numpy(), parts.queue["queue_length"].to_numpy()
    idle = parts.idle
    health = {
        "stuck_after_s": threshold,
        "stuck_chats": int(long["chat_id"].nunique()),
        "stuck_episodes": int(len(long)),
        "stuck_open_at_end": int((~long["closed"]).sum()),
        "stuck_releases": counts["stuck_releases"],
        "idle_releases": counts["idle_releases"],
        "idle_ground_truth": bool(idle.attrs.get("ground_truth", False)),
        "idle_false_positives": int(idle["false_positive"].sum()),
        "idle_false_positive_rate": _rate(int(idle["false_positive"].sum()), len(idle)),
        "queue_mean": step_mean(q_t, q_v, start, duration) if duration > start else None,
        "queue_max": int(q_v.max()) if len(q_v) else 0,
        "queue_final": int(q_v[-1]) if len(q_v) else 0,
    }
    by_topic, by_class = class_metrics(log, parts.waits, service_level_t)
    occ = state_occupancy(log)
    occupancy = {state: {"seconds": _num(occ.at[state, "seconds"]) or 0.0, "share": _num(occ.at[state, "share"])}
                 for state in OPEN_STATES}
    return {
        "schema_version": SCHEMA_VERSION,
        "run": run_info(log),
        "params": {"service_level_t_s": float(service_level_t), "stuck_after_s": threshold},
        "counts": counts,
        "fairness": fairness,
        "wait": wait,
        "assignment": assignment,
        "health": health,
        "guarantees": guarantee_metrics(log, parts.intervals),
        "occupancy": occupancy,
        "groups": group_metrics(po, group_names(log.attrs, dict(zip(po["operator_id"], po["group"])))),
        "topics": by_topic,
        "priorities": by_class,
    }, parts


#: What each key of :func:`compute_metrics` means.  ``<dist>`` / ``<stat>`` / ``<state>`` are

@dataclass(frozen=True)
class Analysis:
    """One run analysed once: the log, its metrics dict and the tables reports and plots need."""

    label: str
    log: pd.DataFrame
    metrics: dict[str, Any]
    per_operator: pd.DataFrame
    per_hour: pd.DataFrame
    waits: pd.DataFrame
    state_counts: pd.DataFrame
    #: For a run pooled over several seeds (``chatlab.metrics.pooling``): the std of every numeric
    #: metric over the seeds (same layout as ``metrics``, which then holds the means) and
    #: the seeds.  Empty for a single run.
    spread: dict[str, Any] | None = None
    seeds: tuple[int, ...] = ()
    #: ... and the half-width of each mean's 95 % confidence interval (Student t over the seeds)
    interval: dict[str, Any] | None = None

    @property
    def queue(self) -> pd.DataFrame:
        return self.state_counts[["time", _WA]].rename(columns={_WA: "queue_length"})


def default_label(log: pd.DataFrame) -> str:
    """A run's name in tables and legends: the policy (with parameters), else the source."""
    info = run_info(log)
    label = str(info["policy"] or info["source"] or "run")
    params = info["policy_params"] or {}
    if params:
        label += "(" + ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) + ")"
    return label


def analyse(
    log: pd.DataFrame,
    *,
    label: str | None = None,
    service_level_t: float = DEFAULT_SERVICE_LEVEL_T,
    stuck_after: float | None = None,
) -> Analysis:
    """Compute the metrics and every table of one run (what a report needs), once (the warm-up cut
    resolved first: :func:`chatlab.metrics.warmup.resolve_warmup`)."""
    with shared_derivations():
        log = resolve_warmup(prepare(log))
        metrics, parts = _metrics_and_parts(log, service_level_t=service_level_t, stuck_after=stuck_after)
        return Analysis(
            label=label or default_label(log),
            log=log,
            metrics=metrics,
            per_operator=parts.per_operator,
            per_hour=per_hour(log, service_level_t=service_level_t),
            waits=parts.waits,
            state_counts=parts.state_counts,
        )

