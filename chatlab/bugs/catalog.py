"""The bugs: what each report said, how the lab reproduces it, and how it is detected.

Each :class:`Bug` names a scenario (``scenarios/bug_*.toml``), the *variant* that reproduces
the report — a buggy policy of ``sim/variants.py``, or the lab without one of its rules (a
scenario override) — the *lab*'s behaviour, and one bound on a ``metrics.json`` key
(``guarantees.*``, the same keys ``chatlab gate --max-…`` checks).  A row passes when the
variant breaks the bound (the bug is *reproduced*: the lab would catch it) and the lab keeps
it (the bug is *absent*).  ``where`` says on which side it runs: ``sim`` (the simulation),
``db`` (Locust against PostgreSQL; the races only the database can show).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Returning chats' p90 wait when their known agent is offline, and the longest unanswered hold,
#: that a fixed floor stays under (s); the peak share a fair one stays under; the FIFO
#: violations allowed (a rate: concurrent claims on the database may commit out of order).
OFFLINE_AGENT_WAIT_S = 300.0
UNANSWERED_HOLD_S = 150.0
PEAK_SHARE = 2.0
FIFO_RATE = 0.01


@dataclass(frozen=True)
class Bug:
    key: str  # short id, e.g. rc-13134
    source: str  # where it was reported
    title: str  # what the report says, in one line
    scenario: str
    variant: str  # the buggy policy
    lab: str  # the lab's policy
    metric: str  # dotted metrics.json key
    limit: float  # the bound: metric <= limit
    where: tuple[str, ...] = ("sim",)
    variant_overrides: Mapping[str, Any] = field(default_factory=dict)
    lab_overrides: Mapping[str, Any] = field(default_factory=dict)
    variant_label: str = ""  # how the table names the variant (default: its policy)
    lab_label: str = ""
    db_time_scale: float = 60.0  # scenario seconds per wall second on the database
    db_duration: float | None = None  # scenario seconds played on the database (default: all)

    @property
    def bound(self) -> str:
        return f"{self.metric.split('.')[-1]} <= {self.limit:g}"

    def describe(self, side: str) -> str:
        if side == "variant":
            return self.variant_label or self.variant
        return self.lab_label or self.lab


BUGS: tuple[Bug, ...] = (
    Bug("rc-13134", "Rocket.Chat #13134", "\"least amount\" counted lifetime chats: back from vacation, every new chat",
        "bug_vacation_return", "least_loaded_lifetime", "least_loaded", "guarantees.peak_share", PEAK_SHARE),
    Bug("cw-11034", "Chatwoot #11034, Rocket.Chat #18217", "concurrent requests exceed the active-chat limit (a race)",
        "bug_capacity_race", "exclude_last_unlocked", "exclude_last", "guarantees.capacity_overshoot", 0.0,
        where=("db",), variant_label="exclude_last without the operator lock", db_time_scale=90.0),
    Bug("rc-6802", "Rocket.Chat #6802", "ties broken by creation order: the same agent always goes first",
        "bug_creation_order", "least_loaded_by_creation", "least_loaded", "guarantees.peak_share", PEAK_SHARE),
    Bug("cw-10583", "Chatwoot #10583", "when capacity frees up, a newer chat is assigned before the queued one",
        "bug_queue_jump", "newest_first", "exclude_last", "guarantees.fifo_violation_rate", FIFO_RATE,
        where=("sim", "db"), db_time_scale=120.0),
    Bug("cw-4158", "Chatwoot #4158 / #7204", "a returning customer's chat goes to their offline last agent and waits",
        "bug_offline_agent", "sticky_offline", "exclude_last", "guarantees.offline_agent_wait_p90_s",
        OFFLINE_AGENT_WAIT_S, variant_label="sticky_offline (known agent held while offline)",
        lab_label="exclude_last + sticky_for (held only while online with room)"),
    Bug("cw-14508", "Chatwoot #14508", "a chat stays with an agent who never replies",
        "bug_silent_agent", "exclude_last", "exclude_last", "guarantees.longest_unanswered_hold_s", UNANSWERED_HOLD_S,
        where=("sim", "db"), lab_overrides={"jobs.reassign_after": 120.0},
        variant_label="exclude_last, no no-answer timeout", lab_label="exclude_last + reassign_after 120 s",
        db_time_scale=240.0),
    Bug("login-burst", "log-in burst (shift start)", "many operators come online at the same instant and ask at once",
        "bug_login_burst", "exclude_last_unlocked", "exclude_last", "guarantees.capacity_overshoot", 0.0,
        where=("db",), variant_label="exclude_last without the operator lock"),
)


def bug_scenarios() -> list[str]:
    """The scenarios the suite uses (each must load)."""
    return list(dict.fromkeys(b.scenario for b in BUGS))
