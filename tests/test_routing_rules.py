"""The routing rules real products ship, pinned by hand on both implementations (issue 13):
known-agent (sticky) routing, the no-answer timeout, the fair-distribution limit and
capacity by weight (``sim/routing.py``, ``sim/jobs.py``; migration 020).

Each case drives ``sim.system.ChatSystem`` and the SQL functions in lock-step (``twins.Both``)
and checks both give the answer the rule promises; the random agreement and differential
tests cover the rest of the space.
"""

from __future__ import annotations

import pytest
from twins import Both

from sim.errors import InvalidArgument


@pytest.fixture
def both(db) -> Both:
    return Both(db)


def _served_and_closed(both: Both, op: int, user: int) -> int:
    """A chat of ``user`` handled by ``op`` and closed: the user's previous agent is ``op``."""
    chat = both.chat(user)
    assert both.assign(op) == chat
    both.reply(op, chat)
    both.end(chat)
    return chat


# -- known agent (sticky) ------------------------------------------------------------------

def test_a_returning_users_new_chat_goes_to_their_previous_agent_first(both: Both) -> None:
    agent, other = both.operator(), both.operator()
    _served_and_closed(both, agent, user=1)
    older = both.at(5).chat(2)
    returning = both.at(6).chat(1)
    assert both.at(10).assign(other, sticky_for=60) == older   # the returning chat is held for agent
    assert both.assign(other, sticky_for=60) is None
    assert both.assign(agent, sticky_for=60) == returning


def test_the_previous_agent_is_offered_its_returning_chat_before_older_ones(both: Both) -> None:
    agent = both.operator()
    _served_and_closed(both, agent, user=1)
    older = both.at(5).chat(2)
    returning = both.at(6).chat(1)
    assert both.at(10).assign(agent, sticky_for=60) == returning
    assert both.sim.chats[older].state.value == "waiting_assignment"


def test_without_the_rule_the_queue_order_holds(both: Both) -> None:
    agent = both.operator(max_chats=2)
    _served_and_closed(both, agent, user=1)
    older = both.at(5).chat(2)
    both.at(6).chat(1)
    assert both.at(10).assign(agent) == older


def test_an_offline_previous_agent_holds_nothing(both: Both) -> None:
    agent, other = both.operator(), both.operator()
    _served_and_closed(both, agent, user=1)
    both.online(agent, False)
    returning = both.at(6).chat(1)
    assert both.at(10).assign(other, sticky_for=600) == returning


def test_a_full_previous_agent_holds_nothing(both: Both) -> None:
    agent, other = both.operator(), both.operator()
    _served_and_closed(both, agent, user=1)
    busy = both.at(2).chat(3)
    assert both.assign(agent) == busy
    returning = both.at(6).chat(1)
    assert both.at(10).assign(other, sticky_for=600) == returning


def test_the_hold_ends_after_sticky_for_seconds(both: Both) -> None:
    agent, other = both.operator(), both.operator()
    _served_and_closed(both, agent, user=1)
    returning = both.at(100).chat(1)
    assert both.at(159).assign(other, sticky_for=60) is None
    assert both.at(160).assign(other, sticky_for=60) == returning


def test_sticky_never_overrides_the_exclusion_inside_a_chat(both: Both) -> None:
    """Once the agent has handled the new chat, the seed's rule applies: it does not get it back."""
    agent, other = both.operator(), both.operator()
    _served_and_closed(both, agent, user=1)
    returning = both.at(6).chat(1)
    assert both.assign(agent, sticky_for=600) == returning
    both.reply(agent, returning)
    both.both(lambda s: s.real_user_message(1, "more", returning, now=both.t),
              lambda d: d.real_user_message(1, "more", returning))
    assert both.assign(agent, sticky_for=600) is None
    assert both.assign(other, sticky_for=600) == returning


def test_operator_ordered_policies_respect_the_hold(both: Both) -> None:
    """Round robin: 'other' is next (assigned least recently) but the only chat is held for 'agent'."""
    agent, other = both.operator(), both.operator()
    _served_and_closed(both, agent, user=1)
    returning = both.at(6).chat(1)
    assert both.assign(other, "round_robin", sticky_for=600) is None
    assert both.assign(agent, "round_robin", sticky_for=600) == returning
    both.logs_agree()


# -- no-answer timeout ---------------------------------------------------------------------

def test_a_chat_without_an_answer_goes_back_with_its_operator_excluded(both: Both) -> None:
    silent, other = both.operator(), both.operator()
    chat = both.chat(1)
    assert both.assign(silent) == chat
    assert both.at(29).no_answer(30) == 0
    assert both.at(30).no_answer(30) == 1
    assert both.sim.chats[chat].last_operator_id == silent
    assert both.assign(silent) is None        # the fix's exclusion keeps it away from the silent one
    assert both.assign(other) == chat
    both.logs_agree()                         # stuck_release, reason no_answer, on both sides
    assert both.sim.log.to_frame()["reason"].astype(str).str.contains("no_answer").sum() == 1


def test_legacy_gives_the_unanswered_chat_back_to_the_silent_operator(both: Both) -> None:
    silent, _ = both.operator(), both.operator()
    chat = both.chat(1)
    assert both.assign(silent, "legacy") == chat
    assert both.at(30).no_answer(30) == 1
    assert both.assign(silent, "legacy") == chat


def test_an_answered_chat_is_not_released(both: Both) -> None:
    op = both.operator()
    chat = both.chat(1)
    assert both.assign(op) == chat
    both.at(10).reply(op, chat)
    assert both.at(100).no_answer(30) == 0


def test_a_bad_timeout_is_refused_on_both_sides(both: Both) -> None:
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(InvalidArgument):
            both.sim.release_unanswered_chats(bad)
        with pytest.raises(InvalidArgument):
            both.db.release_unanswered_chats(bad)


# -- fair-distribution limit ---------------------------------------------------------------

def test_at_most_fair_limit_assignments_per_window(both: Both) -> None:
    op = both.operator()
    for user, t in ((1, 0), (2, 5)):
        chat = both.at(t).chat(user)
        assert both.assign(op, fair_limit=2, fair_window=60) == chat
        both.reply(op, chat)
    third = both.at(10).chat(3)
    assert both.assign(op, fair_limit=2, fair_window=60) is None
    assert both.at(60).assign(op, fair_limit=2, fair_window=60) == third  # the one at t=0 left the window


def test_the_matching_skips_an_operator_at_its_limit(both: Both) -> None:
    busy, other = both.operator(), both.operator()
    first = both.chat(1)
    assert both.assign(busy, fair_limit=1) == first
    both.reply(busy, first)
    second = both.at(5).chat(2)
    # longest idle: both were last active at 0, so 'busy' (lower id) is ahead and would take it
    assert both.assign(other, "longest_idle") is None
    assert both.assign(busy, "longest_idle", fair_limit=1) is None     # at its limit: nothing
    assert both.assign(other, "longest_idle", fair_limit=1) == second  # and skipped in the matching


# -- capacity by weight --------------------------------------------------------------------

def test_a_heavy_chat_waits_for_an_operator_it_fits(both: Both) -> None:
    small, big = both.operator(max_chats=2), both.operator(max_chats=2)
    plain = both.chat(1)
    assert both.assign(small) == plain            # small: 1 of 2 units in use
    video = both.at(1).chat(2, "video")           # weight 2
    later = both.at(2).chat(3)
    assert both.assign(small) == later            # the video does not fit in 1 unit
    assert both.assign(big) == video
    assert both.assign(big) is None               # 2 of 2 units
    status = both.db.get_assignment_queue_status()
    assert status["free_capacity"] == 0 and status["operators_with_capacity"] == 0
    assert all(c.passed for c in both.db.verify())


def test_least_loaded_counts_units_not_chats(both: Both) -> None:
    a, b = both.operator(max_chats=3), both.operator(max_chats=3)
    video = both.chat(1, "video")
    assert both.assign(a) == video                 # a: one chat, 2 units
    plain = both.at(1).chat(2)
    assert both.assign(b) == plain                 # b: one chat, 1 unit
    nxt = both.at(2).chat(3)
    assert both.assign(a, "least_loaded") is None  # b is less loaded (1 < 2 units) and takes it
    assert both.assign(b, "least_loaded") == nxt
    both.logs_agree()


def test_a_bad_weight_is_refused_on_both_sides(both: Both) -> None:
    for bad in (0, 101, -1):
        with pytest.raises(InvalidArgument):
            both.sim.define_topic("x", None, 0, bad)
        with pytest.raises(InvalidArgument):
            both.db.define_topic("x", None, 0, bad)
