"""ChatSystem: the in-memory reference of the chat semantics (sim/system.py)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.eventlog import validate
from sim.policies import POLICY_NAMES, ChatOrderedPolicy, ChatView, make_policy
from sim.errors import ChatLabError, IllegalTransition
from sim.statemachine import Event, State, is_legal
from sim.errors import ChatCompleted, InvalidArgument, NotYourChat, UnknownChat, UnknownOperator
from sim.system import ChatSystem

S = State


def rows(system: ChatSystem) -> list[tuple]:
    """The recorded rows (t, chat, op, event, from, to, reason); topics: test_floor_routing.py."""
    return [r[:7] for r in system.log._rows]


def world(n_ops: int = 2, max_chats: int = 1) -> ChatSystem:
    system = ChatSystem()
    for _ in range(n_ops):
        system.create_operator(max_chats=max_chats, online=True, now=0.0)
    return system


def frozen(system: ChatSystem) -> tuple:
    """Everything observable, for 'errors change nothing' checks."""
    return (copy.deepcopy(system.operators), copy.deepcopy(system.chats), len(system.log),
            copy.deepcopy(system.history))


def test_one_conversation_produces_the_documented_rows() -> None:
    system = world(2)
    chat = system.real_user_message(7, "hi", now=1.0)
    assert system.assign(1, "exclude_last", now=2.0) == chat
    assert system.assign(1, "exclude_last", now=2.5) is None  # full (max_chats 1)
    system.operator_message(1, chat, "hello", now=3.0)
    assert system.state_of(chat) is S.WAITING_REAL_USER_REPLY
    assert system.assign(1, "exclude_last", now=4.0) is None  # the fix: nothing to answer
    system.real_user_message(7, "thanks", chat, now=5.0)
    assert system.assign(1, "exclude_last", now=6.0) is None  # excluded: it was the last operator
    assert system.assign(2, "exclude_last", now=6.0) == chat
    system.end_chat(chat, "resolved", now=7.0)
    assert rows(system)[2:] == [
        (1.0, chat, None, "user_message", None, "waiting_assignment", None),
        (2.0, chat, 1, "assign", "waiting_assignment", "assigned", None),
        (3.0, chat, 1, "operator_reply", "assigned", "waiting_real_user_reply", None),
        (5.0, chat, None, "user_message", "waiting_real_user_reply", "waiting_assignment", None),
        (6.0, chat, 2, "assign", "waiting_assignment", "assigned", None),
        (7.0, chat, 2, "end", "assigned", "completed", "resolved"),
    ]
    assert rows(system)[:2] == [(0.0, None, 1, "operator_online", None, None, None),
                                (0.0, None, 2, "operator_online", None, None, None)]
    c = system.chats[chat]
    assert (c.is_active, c.last_operator_id, c.assigned_operator_id, c.operator_replied_at) == (False, 2, None, 3.0)
    assert [(h.operator_id, h.assigned_at, h.released_at, h.release_reason) for h in system.history] == [
        (1, 2.0, 3.0, "operator_reply"), (2, 6.0, 7.0, "end")]
    validate(system.log.to_frame())


def test_legacy_gives_the_same_chat_back_prematurely() -> None:
    system = world(1)
    chat = system.real_user_message(1, now=0.0)
    assert system.assign(1, "legacy", now=1.0) == chat
    system.operator_message(1, chat, now=2.0)
    assert system.assign(1, "legacy", now=3.0) == chat  # the seed's bug
    assert rows(system)[-1] == (3.0, chat, 1, "assign", "waiting_real_user_reply", "assigned", None)
    # a user message to an assigned chat keeps state and waiting_since
    system.real_user_message(1, "more", chat, now=4.0)
    assert system.state_of(chat) is S.ASSIGNED and system.chats[chat].waiting_since == 0.0


def test_waiting_since_rules() -> None:
    system = world(2)
    chat = system.real_user_message(1, now=0.0)
    system.real_user_message(1, "again", chat, now=5.0)  # queued: keeps its place
    assert system.chats[chat].waiting_since == 0.0
    system.assign(1, "exclude_last", now=6.0)
    system.unassign_chat(1, chat, now=7.0)  # unassign: waiting_since unchanged
    assert system.chats[chat].waiting_since == 0.0 and system.chats[chat].last_operator_id == 1
    system.assign(2, "exclude_last", now=8.0)
    system.operator_message(2, chat, now=9.0)
    system.real_user_message(1, "reply", chat, now=12.0)  # user answers: back in the queue from now
    assert system.chats[chat].waiting_since == 12.0


def test_activity_is_reply_unassign_touch_online_but_not_assign() -> None:
    system = world(1)
    chat = system.real_user_message(1, now=0.0)
    system.assign(1, "exclude_last", now=10.0)
    assert system.operators[1].last_activity_at == 0.0 and system.operators[1].last_assigned_at == 10.0
    system.touch_operator(1, now=11.0)
    assert system.operators[1].last_activity_at == 11.0
    system.unassign_chat(1, chat, now=12.0)
    assert system.operators[1].last_activity_at == 12.0


def test_going_offline_releases_assigned_chats_as_unassign() -> None:
    system = world(1, max_chats=3)
    a, b, c = (system.real_user_message(u, now=0.0) for u in (1, 2, 3))
    system.assign(1, "exclude_last", now=1.0)
    system.assign(1, "exclude_last", now=1.0)
    system.operator_message(1, a, now=2.0)  # a waits for its user: not released
    assert system.set_operator_online(1, False, now=3.0) == 1
    assert rows(system)[-2:] == [(3.0, b, 1, "unassign", "assigned", "waiting_assignment", "operator_offline"),
                                 (3.0, None, 1, "operator_offline", None, None, None)]
    assert system.state_of(a) is S.WAITING_REAL_USER_REPLY and system.chats[b].last_operator_id == 1
    assert system.assign(1, "exclude_last", now=4.0) is None  # offline -> None, no error
    n = len(system.log)
    assert system.set_operator_online(1, False, now=5.0) == 0 and len(system.log) == n  # no change, no row


def test_idle_detection_releases_only_inactive_online_operators() -> None:
    system = world(3)
    a, b = system.real_user_message(1, now=0.0), system.real_user_message(2, now=0.0)
    system.assign(1, "exclude_last", now=0.0)  # op 1 holds a
    system.assign(2, "exclude_last", now=0.0)  # op 2 holds b
    system.operator_message(2, b, now=50.0)  # op 2 active at 50; b waits for its user
    system.touch_operator(3, now=80.0)
    assert system.release_idle_operator_chats(60.0, now=100.0) == 1  # op 1 (activity 0) only has a
    assert system.state_of(a) is S.WAITING_ASSIGNMENT and system.state_of(b) is S.WAITING_REAL_USER_REPLY
    assert [system.is_online(i) for i in (1, 2, 3)] == [False, True, True]
    assert rows(system)[-2:] == [(100.0, a, 1, "idle_release", "assigned", "waiting_assignment", "idle"),
                                 (100.0, None, 1, "operator_offline", None, None, "idle")]
    # op 2 (activity 50) is idle by 111 but holds nothing assigned: goes offline, 0 chats
    assert system.release_idle_operator_chats(60.0, now=111.0) == 0
    assert system.state_of(b) is S.WAITING_REAL_USER_REPLY and not system.is_online(2)


def test_stuck_detection_and_release() -> None:
    system = world(2)
    a = system.real_user_message(1, now=0.0)
    b = system.real_user_message(2, now=0.0)
    system.assign(1, "exclude_last", now=10.0)
    system.assign(2, "exclude_last", now=20.0)
    assert system.detect_stuck_chats(100.0, now=115.0) == [a]
    assert system.detect_stuck_chats(100.0, now=125.0) == [a, b]
    assert system.release_and_reassign_chat(a, "stuck_timeout", now=125.0) == 1
    assert rows(system)[-1] == (125.0, a, 1, "stuck_release", "assigned", "waiting_assignment", "stuck_timeout")
    assert system.chats[a].last_operator_id == 1 and system.chats[a].waiting_since == 0.0
    with pytest.raises(IllegalTransition):
        system.release_and_reassign_chat(a, "again", now=126.0)  # not assigned any more


@pytest.mark.parametrize("call, error", [
    (lambda s: s.operator_message(9, 1), UnknownOperator),
    (lambda s: s.operator_message(2, 99), UnknownChat),
    (lambda s: s.operator_message(2, 1), NotYourChat),  # chat 1 is op 1's
    (lambda s: s.unassign_chat(2, 1), NotYourChat),
    (lambda s: s.operator_message(1, 2), NotYourChat),  # chat 2 is queued
    (lambda s: s.operator_message(1, 3), ChatCompleted),
    (lambda s: s.end_chat(3, "again"), ChatCompleted),
    (lambda s: s.real_user_message(3, "x", 3), ChatCompleted),
    (lambda s: s.real_user_message(1, "x", 2), NotYourChat),  # chat 2 is user 2's
    (lambda s: s.real_user_message(1, "x", 42), UnknownChat),
    (lambda s: s.assign(9, "exclude_last"), UnknownOperator),
    (lambda s: s.assign(1, "no_such_policy"), ChatLabError),
    (lambda s: s.release_and_reassign_chat(2, "x"), IllegalTransition),
    (lambda s: s.release_and_reassign_chat(1, ""), InvalidArgument),
    (lambda s: s.release_idle_operator_chats(-1), InvalidArgument),
    (lambda s: s.detect_stuck_chats(float("nan")), InvalidArgument),
    (lambda s: s.touch_operator(1, now=1.0), InvalidArgument),  # clock at 5: backwards
    (lambda s: s.touch_operator(1, now=float("inf")), InvalidArgument),
    (lambda s: s.create_operator(max_chats=0), InvalidArgument),
    (lambda s: s.set_operator_online(0, True), UnknownOperator),
])
def test_bad_calls_raise_named_errors_and_change_nothing(call, error) -> None:
    system = world(2)
    system.real_user_message(1, now=0.0)
    system.real_user_message(2, now=0.0)
    system.real_user_message(3, now=0.0)
    system.assign(1, "exclude_last", now=1.0)
    system.end_chat(3, "resolved", now=5.0)
    before = frozen(system)
    with pytest.raises(error) as info:
        call(system)
    assert isinstance(info.value, ChatLabError) and str(info.value)
    assert frozen(system) == before


class _Broken(ChatOrderedPolicy):
    """A non-legacy policy that (wrongly) allows chats waiting for the user."""

    name = "broken"

    def eligible(self, chat: ChatView, operator_id: int, now: float) -> bool:
        return chat.state is not S.ASSIGNED


def test_a_policy_breaking_the_state_machine_fails_loudly() -> None:
    system = world(1)
    chat = system.real_user_message(1, now=0.0)
    system.assign(1, "exclude_last", now=1.0)
    system.operator_message(1, chat, now=2.0)
    system.real_user_message(2, now=2.5)  # a waiting chat, younger than the replied one
    before = len(system.log)
    with pytest.raises(IllegalTransition, match="legacy"):
        system.assign(1, _Broken(), now=3.0)
    assert len(system.log) == before and system.state_of(chat) is S.WAITING_REAL_USER_REPLY


def test_operator_ordered_policy_matches_over_all_free_operators() -> None:
    system = world(2)
    system.real_user_message(1, now=0.0)
    # round robin: both never assigned, op 1 first -> op 2 gets nothing while op 1 could take it
    assert system.assign(2, "round_robin", now=1.0) is None
    assert system.assign(1, "round_robin", now=1.0) == 1


def test_snapshot_lists_open_chats_and_all_operators() -> None:
    system = world(2)
    a = system.real_user_message(1, now=0.0)
    b = system.real_user_message(2, now=1.0)
    system.assign(1, "exclude_last", now=2.0)
    snap = system.snapshot(now=2.0, salt=5)
    assert [c.chat_id for c in snap.chats] == [a, b] and snap.salt == 5
    assert [o.active_chats for o in snap.operators] == [1, 0]
    assert [c.chat_id for c in system.snapshot(queue_only=True).chats] == [b]


# ----------------------------------------------------------------- random call sequences

_CALLS = st.lists(
    st.tuples(st.sampled_from(["msg", "new", "assign", "reply", "unassign", "end", "offline", "online",
                               "idle", "stuck", "touch"]),
              st.integers(1, 3), st.integers(1, 6), st.sampled_from(POLICY_NAMES)),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(_CALLS)
def test_random_call_sequences_keep_the_invariants(calls) -> None:
    """Whatever users do, the rows are legal transitions and the bookkeeping stays consistent."""
    system = world(3, max_chats=2)
    t = 0.0
    for kind, op, chat, policy in calls:
        t += 1.0
        try:
            if kind == "new":
                system.real_user_message(op, now=t)
            elif kind == "msg":
                system.real_user_message(system.chats[chat].real_user_id if chat in system.chats else 1, "m", chat, now=t)
            elif kind == "assign":
                pol = make_policy(policy)
                expected = pol.pick(system.snapshot(t, chat), op) if op in system.operators else None
                assert system.assign(op, pol, now=t, salt=chat) == expected  # the full snapshot's answer
            elif kind == "reply":
                system.operator_message(op, chat, now=t)
            elif kind == "unassign":
                system.unassign_chat(op, chat, now=t)
            elif kind == "end":
                system.end_chat(chat, "resolved", now=t)
            elif kind in ("offline", "online"):
                system.set_operator_online(op, kind == "online", now=t)
            elif kind == "idle":
                system.release_idle_operator_chats(3.0, now=t)
            elif kind == "stuck":
                for c in system.detect_stuck_chats(2.0, now=t):
                    system.release_and_reassign_chat(c, "stuck", now=t)
            else:
                system.touch_operator(op, now=t)
        except IllegalTransition as exc:
            assert isinstance(exc, ChatCompleted), exc
        except (UnknownChat, NotYourChat):
            pass
    for op in system.operators.values():
        held = {c.id for c in system.chats.values() if c.state is S.ASSIGNED and c.assigned_operator_id == op.id}
        assert op.chats == held and len(held) <= op.max_chats
        assert op.online or not held
    for c in system.chats.values():
        assert (c.state is S.ASSIGNED) == (c.assigned_operator_id is not None)
        assert c.is_active == (c.state is not S.COMPLETED)
    log = validate(system.log.to_frame())
    for _, r in log.loc[log["chat_id"].notna()].iterrows():
        if pd_isna(r["from_state"]):
            assert r["event"] == Event.USER_MESSAGE.value
        else:
            assert is_legal(r["from_state"], r["event"], legacy=True)
    assert sum(1 for h in system.history if h.released_at is None) == sum(len(o.chats) for o in system.operators.values())


def pd_isna(value: object) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_assign_by_name_takes_the_fallback_parameter_like_sql() -> None:
    system = world(1)
    chat = system.real_user_message(1, now=0.0)
    system.assign(1, "exclude_last", now=1.0)
    system.operator_message(1, chat, now=2.0)
    system.real_user_message(1, "again", chat, now=3.0)
    assert system.assign(1, "exclude_last_fallback", now=50.0, fallback_after=60.0) is None
    assert system.assign(1, "exclude_last_fallback", now=63.0, fallback_after=60.0) == chat
