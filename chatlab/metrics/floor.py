"""The floor's metrics: per group of operators (fairness *within* a group — a senior compared with a
junior is not unfairness — and utilisation), per topic and per priority class (waits, service
level, abandonment).

Who is in which group and what each topic's class is come from the log's ``attrs``
(``sim.scenario.Scenario.floor_attrs``: the simulation and the load test both write them); a
log without them is one group (:data:`sim.scenario.DEFAULT_GROUP`) of one topic
(:data:`sim.scenario.DEFAULT_TOPIC`) in class 0.  A chat's topic is the log's ``topic``
column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from chatlab.metrics.episodes import wait_summary
from chatlab.metrics.fairness import fairness_summary
from chatlab.metrics.runlog import _num, _rate, chat_starts, in_window, window_start
from sim.scenario.spec import DEFAULT_GROUP, DEFAULT_TOPIC
from sim.statemachine import Event

#: The per-group distributions fairness is computed over (operators of the group online at all).
GROUP_DISTRIBUTIONS: tuple[str, ...] = ("assignments_per_online_hour", "utilisation")
#: The wait statistics reported per topic and per priority class.
CLASS_WAIT_KEYS: tuple[str, ...] = ("waits", "served", "mean_s", "p50_s", "p90_s", "p99_s", "service_level")


def operator_groups(attrs: Mapping[str, Any], operators: list[int]) -> dict[int, str]:
    """Operator id -> its group (``attrs["groups"]``: name -> ids); unnamed operators: the default group."""
    named = {int(op): str(name) for name, ids in (attrs.get("groups") or {}).items() for op in ids}
    return {op: named.get(op, DEFAULT_GROUP) for op in operators}


def group_names(attrs: Mapping[str, Any], groups: Mapping[int, str]) -> list[str]:
    """The groups in the scenario's order (declared first, then any other seen; at least one)."""
    return list(dict.fromkeys([*map(str, attrs.get("groups") or {}), *groups.values()])) or [DEFAULT_GROUP]


def topic_classes(attrs: Mapping[str, Any]) -> dict[str, int]:
    """Topic -> priority class, as the scenario declared them (``attrs["topics"]``)."""
    return {str(name): int((spec or {}).get("priority") or 0) for name, spec in (attrs.get("topics") or {}).items()}


def chat_topics(log: pd.DataFrame) -> pd.Series:
    """Chat id -> its topic (the default topic for a chat opened without one)."""
    rows = log.loc[log["chat_id"].notna(), ["chat_id", "topic"]].drop_duplicates("chat_id")
    topics = rows["topic"].astype(object).where(rows["topic"].notna(), DEFAULT_TOPIC)
    return pd.Series(topics.to_numpy(), index=rows["chat_id"].astype("int64").to_numpy(), dtype=object)


def busy_seconds(intervals: pd.DataFrame, operators: list[int]) -> list[float]:
    """Per operator: the time it held at least one chat (the union of its ``assigned`` stays)."""
    held = intervals.loc[(intervals["state"] == "assigned") & intervals["operator_id"].notna()]
    out: dict[int, float] = {}
    for op, stays in held.groupby(held["operator_id"].astype("int64")):
        spans = sorted(zip(stays["start"].to_numpy(dtype=float), stays["end"].to_numpy(dtype=float)))
        total, (lo, hi) = 0.0, spans[0]
        for a, b in spans[1:]:
            if a > hi:
                total, lo, hi = total + hi - lo, a, b
            else:
                hi = max(hi, b)
        out[int(op)] = total + hi - lo
    return [out.get(op, 0.0) for op in operators]


def group_metrics(per_operator: pd.DataFrame, names: list[str]) -> dict[str, Any]:
    """``groups.<name>``: operators, online hours, assignments, mean utilisation, and the fairness
    of assignments per online hour and of utilisation within the group."""
    out: dict[str, Any] = {}
    for name in names:
        members = per_operator.loc[per_operator["group"] == name]
        online = members.loc[members["online_s"] > 0]
        out[name] = {
            "operators": int(len(members)),
            "online_h": _num(members["online_h"].sum()) or 0.0,
            "assignments": int(members["assignments"].sum()),
            "utilisation_mean": _num(online["utilisation"].mean()) if len(online) else None,
            **{d: fairness_summary(online[d]) for d in GROUP_DISTRIBUTIONS},
        }
    return out


def _class_metrics(waits: pd.DataFrame, chats: pd.Series, abandoned: set[int], service_level_t: float) -> dict:
    stats = wait_summary(waits, service_level_t)
    n_abandoned = sum(1 for c in chats.index if int(c) in abandoned)
    return {"chats": int(len(chats)), **{k: stats[k] for k in CLASS_WAIT_KEYS},
            "abandoned": n_abandoned, "abandonment_rate": _rate(n_abandoned, len(chats))}


def class_metrics(log: pd.DataFrame, waits: pd.DataFrame, service_level_t: float) -> tuple[dict, dict]:
    """``topics.<topic>`` (with its class) and ``priorities.<class>``: chats, waits, service level,
    abandonment of each (the topics the scenario declared, then any other seen), over the chats
    opened in the metrics window."""
    every = chat_topics(log)  # a wait in the window may belong to a chat opened before it
    opened = chat_starts(log)
    topics = every[opened.reindex(every.index).to_numpy() >= window_start(log)]
    classes = topic_classes(log.attrs)
    window = in_window(log)
    ended = window.loc[(window["event"] == Event.END.value) & (window["reason"].astype(object) == "abandoned"),
                       "chat_id"]
    abandoned = {int(c) for c in ended.dropna()}
    wait_chats = waits["chat_id"].astype("int64").to_numpy()
    wait_topic = every.reindex(wait_chats).to_numpy() if len(waits) else np.array([])
    by_topic: dict[str, Any] = {}
    for name in dict.fromkeys([*classes, *topics.unique()]) or [DEFAULT_TOPIC]:
        mine = topics[topics == name]
        by_topic[name] = {"priority": classes.get(name, 0),
                          **_class_metrics(waits.loc[wait_topic == name], mine, abandoned, service_level_t)}
    priority_every = every.map(lambda t: classes.get(t, 0))
    priority_of = priority_every.reindex(topics.index)
    wait_class = priority_every.reindex(wait_chats).to_numpy() if len(waits) else np.array([])
    by_class = {str(p): _class_metrics(waits.loc[wait_class == p], priority_of[priority_of == p], abandoned,
                                       service_level_t)
                for p in sorted({*classes.values(), *priority_of.unique()} or {0}, reverse=True)}
    return by_topic, by_class
