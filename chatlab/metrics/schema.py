"""The ``metrics.json`` schema: every key, what it means, and the README table generated from it.

A test checks that :func:`documented_keys` equals the keys :func:`chatlab.metrics.compute_metrics`
really returns, so the documentation cannot drift from the numbers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from chatlab.metrics.floor import GROUP_DISTRIBUTIONS
from chatlab.metrics.runlog import OPEN_STATES
from sim.scenario.spec import DEFAULT_GROUP, DEFAULT_TOPIC

#: Bump when a key of :func:`compute_metrics` changes meaning or disappears.
SCHEMA_VERSION = 1

METRIC_DOCS: dict[str, str] = {
    "schema_version": "version of this key layout (bumped when a key changes meaning)",
    "run.scenario": "scenario name (attrs)",
    "run.policy": "policy name (attrs)",
    "run.policy_params": "policy parameters, e.g. {\"fallback_after\": 300} (attrs; JSON text in CSV)",
    "run.seed": "random seed (attrs)",
    "run.source": "where the log came from: sim, db, loadtest ... (attrs)",
    "run.mode": "assignment mode, e.g. pull/push (attrs)",
    "run.time_scale": "scenario seconds per wall second (attrs; load tests)",
    "run.duration_s": "length of the run in scenario seconds (the metrics window is [warmup_s, duration_s])",
    "run.warmup_s": "scenario seconds at the start left out of every metric (0: none)",
    "run.warmup_method": "how the warm-up was chosen: fixed (a number of seconds), mser5 (warmup = \"auto\"); null: none",
    "run.operators": "number of operators in the run",
    "run.events": "rows in the event log",
    "params.service_level_t_s": "service-level threshold T used for wait.service_level (s)",
    "params.stuck_after_s": "threshold above which an assigned stay counts as stuck (s)",
    "counts.chats": "distinct chats in the log",
    "counts.assignments": "assign events",
    "counts.replies": "operator_reply events (handled messages)",
    "counts.user_messages": "user_message events (including the one that opens a chat)",
    "counts.unassigns": "unassign events",
    "counts.idle_releases": "idle_release events",
    "counts.stuck_releases": "stuck_release events",
    "counts.ended": "end events",
    "counts.resolved": "end events with reason resolved",
    "counts.abandoned": "end events with reason abandoned",
    "fairness.operators": "operators the fairness indices are computed over (all of the run's operators)",
    "fairness.<dist>.n": "operators in this distribution (per-online-hour ones: operators online at all)",
    "fairness.<dist>.total": "sum of the values",
    "fairness.<dist>.mean": "mean value per operator",
    "fairness.<dist>.min": "smallest value",
    "fairness.<dist>.max": "largest value",
    "fairness.<dist>.gini": "Gini coefficient: 0 even, (n-1)/n one operator takes all; null if nothing to share",
    "fairness.<dist>.jain": "Jain's index (sum x)^2/(n sum x^2): 1 even, 1/n one takes all; null if nothing",
    "fairness.<dist>.cv": "coefficient of variation (population std / mean); null if mean is 0",
    "fairness.<dist>.max_min_ratio": "max / min; null when min is 0",
    "wait.waits": "waits for assignment that started (served + censored)",
    "wait.served": "waits ended by an assign",
    "wait.mean_s": "mean served wait (s)",
    "wait.p50_s": "median served wait (s, linear interpolation)",
    "wait.p90_s": "90th percentile served wait (s)",
    "wait.p99_s": "99th percentile served wait (s)",
    "wait.max_s": "longest served wait (s)",
    "wait.service_level_t_s": "threshold T (s)",
    "wait.served_within_t": "served waits with wait <= T",
    "wait.service_level": "served within T / waits with a known outcome (served + ended in queue + open > T)",
    "wait.service_level_served_only": "served within T / served",
    "wait.censored": "waits not ended by an assign (censored_ended + censored_open)",
    "wait.censored_ended": "waits ended by the chat ending while queued (e.g. abandoned)",
    "wait.censored_open": "waits still open at the end of the run",
    "wait.censored_mean_s": "mean censored length (a lower bound of the real wait) (s)",
    "wait.censored_max_s": "longest censored length (s)",
    "wait.abandoned": "chats ended with reason abandoned",
    "wait.abandonment_rate": "abandoned / chats",
    "assignment.total": "assign events",
    "assignment.repeat": "assigns to the same operator as the chat's previous assign",
    "assignment.repeat_rate": "repeat / total (0 under the seed's fix)",
    "assignment.premature": "assigns from waiting_real_user_reply (nothing to answer)",
    "assignment.premature_rate": "premature / total (0 under the seed's fix)",
    "health.stuck_after_s": "stuck threshold (s)",
    "health.stuck_chats": "chats with at least one assigned stay longer than the threshold",
    "health.stuck_episodes": "assigned stays longer than the threshold",
    "health.stuck_open_at_end": "of those, still assigned when the run ended",
    "health.stuck_releases": "stuck_release events",
    "health.idle_releases": "idle_release events",
    "health.idle_ground_truth": "true when the log has operator_idle/operator_active rows to judge releases by",
    "health.idle_false_positives": "idle releases of a chat whose operator was not idle/offline, or from waiting_real_user_reply",
    "health.idle_false_positive_rate": "idle_false_positives / idle_releases",
    "health.queue_mean": "time-weighted mean number of chats in waiting_assignment",
    "health.queue_max": "largest queue length",
    "health.queue_final": "queue length at the end of the run",
    "guarantees.capacity_overshoot": "assignments that left their operator holding more than max_chats units (chat weights); 0 is the promise",
    "guarantees.fifo_violations": "assignments made while an older chat the same operator could have taken was queued (same or higher class, its skill, not its last operator, no heavier, not held for another)",
    "guarantees.fifo_violation_rate": "fifo_violations / assignments",
    "guarantees.longest_unanswered_hold_s": "longest time a chat stayed with an operator without a reply (an assigned stay; open ones end at the run's end) (s)",
    "guarantees.no_answer_releases": "chats the no-answer timeout took back (stuck_release, reason no_answer)",
    "guarantees.returning_chats": "chats of a user whose previous chat an operator handled (they have a known agent)",
    "guarantees.known_agent_share": "share of returning chats whose first assignment went to the known agent",
    "guarantees.offline_agent_chats": "returning chats whose known agent was offline when they were opened",
    "guarantees.offline_agent_wait_p90_s": "90th percentile of their time to first assignment (to the end or the run's end if never) (s)",
    "guarantees.offline_agent_wait_max_s": "the longest of those (s)",
    "guarantees.peak_share": "largest share of a 15-min window's assignments (>= 10) one operator got, times the operators online in it (1 = fair, n = one took all)",
    "occupancy.<state>.seconds": "chat-seconds spent in the state",
    "occupancy.<state>.share": "share of all open-state chat-seconds",
    "groups.<group>.operators": "operators in the group",
    "groups.<group>.online_h": "the group's online hours, summed over its operators",
    "groups.<group>.assignments": "assignments to the group's operators",
    "groups.<group>.utilisation_mean": "mean utilisation of the group's operators online at all",
    "groups.<group>.<gdist>.<stat>": "fairness within the group (stats as fairness.<dist>) of <gdist>: "
                                    "assignments_per_online_hour or utilisation, over its operators online at all",
    "topics.<topic>.priority": "the topic's priority class (higher is served first)",
    "topics.<topic>.chats": "chats of the topic",
    "topics.<topic>.waits": "waits for assignment of its chats (served + censored)",
    "topics.<topic>.served": "waits ended by an assign",
    "topics.<topic>.mean_s": "mean served wait (s)",
    "topics.<topic>.p50_s": "median served wait (s)",
    "topics.<topic>.p90_s": "90th percentile served wait (s)",
    "topics.<topic>.p99_s": "99th percentile served wait (s)",
    "topics.<topic>.service_level": "served within T / waits with a known outcome (as wait.service_level)",
    "topics.<topic>.abandoned": "its chats ended with reason abandoned",
    "topics.<topic>.abandonment_rate": "abandoned / chats of the topic",
    "priorities.<priority>.<key>": "the same as topics.<topic>.<key> (but priority) over every chat of the class",
}
FAIRNESS_DISTRIBUTIONS: tuple[str, ...] = (
    "assignments", "replies", "assignments_per_online_hour", "replies_per_online_hour", "utilisation",
)


def documented_keys(groups: Sequence[str] = (DEFAULT_GROUP,), topics: Sequence[str] = (DEFAULT_TOPIC,),
                    priorities: Sequence[str] = ("0",)) -> list[str]:
    """:data:`METRIC_DOCS` with the placeholders expanded, in :func:`compute_metrics` order, for a
    floor with these groups, topics and priority classes (default: the flat form's one of each)."""
    plain = [k for k in METRIC_DOCS if "<" not in k]
    expanded: list[str] = []
    for key in plain:
        expanded.append(key)
        if key == "fairness.operators":
            expanded += [f"fairness.{d}.{s}" for d in FAIRNESS_DISTRIBUTIONS for s in _stats("fairness.<dist>.")]
    expanded += [f"occupancy.{st}.{s}" for st in OPEN_STATES for s in _stats("occupancy.<state>.")]
    for g in groups:
        expanded += [f"groups.{g}.{s}" for s in _stats("groups.<group>.") if s != "<stat>"]
        expanded += [f"groups.{g}.{d}.{s}" for d in GROUP_DISTRIBUTIONS for s in _stats("fairness.<dist>.")]
    topic_keys = _stats("topics.<topic>.")
    for t in topics:
        expanded += [f"topics.{t}.{s}" for s in topic_keys]
    for p in priorities:
        expanded += [f"priorities.{p}.{s}" for s in topic_keys if s != "priority"]
    return expanded


def _stats(prefix: str) -> list[str]:
    """The last parts of the documented keys under ``prefix`` (``<gdist>.<stat>`` counts as ``<stat>``)."""
    return [k[len(prefix):].split(".")[-1] for k in METRIC_DOCS if k.startswith(prefix)]


def metric_docs_markdown() -> str:
    """The README's ``metrics.json`` key table, generated from :data:`METRIC_DOCS` so they cannot drift.

    ``<dist>`` is one of :data:`FAIRNESS_DISTRIBUTIONS`; ``<state>`` one of :data:`OPEN_STATES`.
    """
    lines = ["| key | meaning |", "|---|---|"]
    lines += [f"| `{key}` | {text.replace('|', '/')} |" for key, text in METRIC_DOCS.items()]
    return "\n".join(lines)


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys (``wait.p99_s``) for CSV rows and tables; ``run.policy_params`` becomes JSON text."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and name != "run.policy_params":
            flat.update(flatten_metrics(value, f"{name}."))
        elif isinstance(value, Mapping):
            flat[name] = json.dumps(value, sort_keys=True)
        else:
            flat[name] = value
    return flat


def metric_keys() -> list[str]:
    """Every dotted key :func:`compute_metrics` returns (computed on an empty log)."""
    from chatlab.metrics.analysis import compute_metrics  # at call time: analysis imports this module
    from sim.eventlog import empty_log

    return list(flatten_metrics(compute_metrics(empty_log({"duration": 1.0}))).keys())


def get_metric(metrics: Mapping[str, Any], dotted: str) -> Any:
    """Look up ``"wait.p99_s"`` in a nested metrics dict; ``KeyError`` names the missing part."""
    value: Any = metrics
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value

