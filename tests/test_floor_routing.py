"""Routing on real floors, pinned by hand on both implementations: skills, skill relaxation,
priority classes, SLA deadlines (ties by id), the operator-ordered matching with skills.

Each case builds the same world in ``sim.system.ChatSystem`` and on the real SQL functions
and asks both for the same decisions; the random agreement tests
(``test_sql_agreement.py``, ``test_differential.py``) cover the space, these pin the rules.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from twins import Both

from sim.errors import UnknownTopic


@pytest.fixture
def both(db) -> Both:
    return Both(db)


def test_only_an_operator_with_the_skill_gets_the_chat(both: Both) -> None:
    generalist, techie = both.operator(), both.operator(("tech",))
    chat = both.chat(1, "tech")
    assert both.assign(generalist) is None
    assert both.assign(techie) == chat


def test_a_chat_without_a_skill_goes_to_anyone(both: Both) -> None:
    techie = both.operator(("tech",))
    assert both.assign(techie) is None
    chat = both.chat(1)  # no topic
    assert both.assign(techie) == chat


def test_skill_relaxation_after_relax_after_seconds(both: Both) -> None:
    generalist = both.operator()
    chat = both.chat(1, "billing")
    assert both.at(59).assign(generalist, relax=60) is None
    assert both.at(60).assign(generalist, relax=60) == chat


def test_a_higher_class_is_served_first_even_when_newer(both: Both) -> None:
    op = both.operator(("tech",), max_chats=3)
    older = both.chat(1, "tech")
    newer_vip = both.at(10).chat(2, "vip_tech")
    assert both.assign(op) == newer_vip
    assert both.assign(op) == older


def test_sla_deadline_order_replaces_class_then_waiting_time(both: Both) -> None:
    op = both.operator(max_chats=3)
    normal = both.chat(1)  # class 0, target 60: deadline 60
    vip = both.at(50).chat(2, "vip")  # class 1, target 30: deadline 80
    assert both.assign(op, sla=[60.0, 30.0]) == normal  # by deadline, not class
    assert both.assign(op, sla=[60.0, 30.0]) == vip


def test_equal_deadlines_are_broken_by_chat_id_not_waiting_time(both: Both) -> None:
    """Chat 1 re-enters the queue later than chat 2 entered it; same deadline: the lower id first."""
    op, other = both.operator(max_chats=2), both.operator()
    first = both.chat(1, "vip")  # id 1, class 1
    assert both.assign(other) == first
    both.both(lambda s: s.operator_message(other, first, "answer", now=both.t),
              lambda d: d.operator_message(other, first, "answer") and None)  # the message id
    second = both.at(40).chat(2)  # id 2, class 0: deadline 40 + 30 = 70
    both.at(70).both(lambda s: s.real_user_message(1, "more", first, now=both.t),  # back at 70, class 1: 70 + 0
                     lambda d: d.real_user_message(1, "more", first))
    assert both.assign(op, sla=[30.0, 0.0]) == first
    assert both.assign(op, sla=[30.0, 0.0]) == second


def test_random_keeps_the_class_first(both: Both) -> None:
    op = both.operator(max_chats=5)
    normal = [both.chat(u) for u in range(1, 5)]
    vip = both.chat(9, "vip")
    assert both.assign(op, "random") == vip
    assert both.assign(op, "random") in normal


def test_operator_ordered_matching_skips_operators_without_the_skill(both: Both) -> None:
    """Round robin: the generalist is 'next' but cannot take the tech chat, so the techie gets it."""
    generalist = both.operator()
    techie = both.operator(("tech",))
    chat = both.chat(1, "tech")
    assert both.assign(techie, "round_robin") == chat
    assert both.assign(generalist, "round_robin") is None


def test_unknown_topic_on_both_sides(both: Both) -> None:
    with pytest.raises(UnknownTopic):
        both.sim.real_user_message(1, "hello", topic="refunds", now=0.0)
    with pytest.raises(UnknownTopic):
        both.db.real_user_message(1, "hello", None, "refunds")
    assert both.chat(1, "billing") == 1  # nothing was used up by the refused chats


def test_a_redefined_topic_leaves_open_chats_alone(both: Both) -> None:
    generalist = both.operator()
    both.chat(1, "billing")
    both.both(lambda s: s.define_topic("billing", None, 0), lambda d: d.define_topic("billing", None, 0))
    assert both.assign(generalist) is None  # the chat kept the skill it was opened with
    assert both.assign(generalist) is None
    later = both.chat(2, "billing")
    assert both.assign(generalist) == later


def test_the_event_log_carries_each_chats_topic(both: Both) -> None:
    op = both.operator(("billing",))
    chat = both.chat(1, "billing")
    assert both.assign(op) == chat
    both.chat(2)
    def topics(log: Any) -> list[str | None]:
        return [None if pd.isna(x) else x for x in log["topic"]]

    # rows: operator_online, user_message + assign of the billing chat, user_message of the plain one
    assert topics(both.sim.log.to_frame()) == topics(both.db.events()) == [None, "billing", "billing", None]
