"""The transition table, enumerated exhaustively: every (state, event) pair is checked."""

from __future__ import annotations

import itertools

import pytest

from sim.errors import ChatLabError, IllegalTransition
from sim.statemachine import ASSIGNABLE_STATES, INITIAL_STATE, LEGACY_ASSIGNABLE_STATES, TRANSITIONS, Event, State, is_legal, next_state, state_pairs

S, E = State, Event

# The expected table, written out independently of sim/statemachine.py from the seed's
# diagram: (state, event) -> target for the fix; LEGACY adds the pre-fix premature assign.
EXPECTED_FIX = {
    (S.WAITING_ASSIGNMENT, E.USER_MESSAGE): S.WAITING_ASSIGNMENT,
    (S.WAITING_ASSIGNMENT, E.ASSIGN): S.ASSIGNED,
    (S.WAITING_ASSIGNMENT, E.END): S.COMPLETED,
    (S.ASSIGNED, E.USER_MESSAGE): S.ASSIGNED,
    (S.ASSIGNED, E.OPERATOR_REPLY): S.WAITING_REAL_USER_REPLY,
    (S.ASSIGNED, E.UNASSIGN): S.WAITING_ASSIGNMENT,
    (S.ASSIGNED, E.IDLE_RELEASE): S.WAITING_ASSIGNMENT,
    (S.ASSIGNED, E.STUCK_RELEASE): S.WAITING_ASSIGNMENT,
    (S.ASSIGNED, E.END): S.COMPLETED,
    (S.WAITING_REAL_USER_REPLY, E.USER_MESSAGE): S.WAITING_ASSIGNMENT,
    (S.WAITING_REAL_USER_REPLY, E.END): S.COMPLETED,
}
EXPECTED_LEGACY = {**EXPECTED_FIX, (S.WAITING_REAL_USER_REPLY, E.ASSIGN): S.ASSIGNED}

ALL_PAIRS = list(itertools.product(State, Event))


def test_there_are_28_pairs_and_all_are_covered() -> None:
    assert len(ALL_PAIRS) == 4 * 7
    assert set(TRANSITIONS) <= set(ALL_PAIRS)


@pytest.mark.parametrize("state,event", ALL_PAIRS, ids=[f"{s}-{e}" for s, e in ALL_PAIRS])
def test_every_pair_under_the_fix(state: State, event: Event) -> None:
    expected = EXPECTED_FIX.get((state, event))
    assert is_legal(state, event) is (expected is not None)
    if expected is None:
        with pytest.raises(IllegalTransition) as info:
            next_state(state, event, chat_id=17)
        message = str(info.value)
        assert "17" in message and state.value in message and event.value in message
        assert isinstance(info.value, ChatLabError)
    else:
        assert next_state(state, event) is expected


@pytest.mark.parametrize("state,event", ALL_PAIRS, ids=[f"{s}-{e}" for s, e in ALL_PAIRS])
def test_every_pair_under_legacy(state: State, event: Event) -> None:
    expected = EXPECTED_LEGACY.get((state, event))
    assert is_legal(state, event, legacy=True) is (expected is not None)
    if expected is None:
        with pytest.raises(IllegalTransition):
            next_state(state, event, legacy=True)
    else:
        assert next_state(state, event, legacy=True) is expected


def test_legacy_only_assign_says_why() -> None:
    with pytest.raises(IllegalTransition, match="legacy"):
        next_state(S.WAITING_REAL_USER_REPLY, E.ASSIGN, chat_id=3)


def test_completed_is_terminal_and_assignable_sets() -> None:
    assert not any(is_legal(S.COMPLETED, e, legacy=True) for e in Event)
    assert INITIAL_STATE is S.WAITING_ASSIGNMENT
    assert ASSIGNABLE_STATES == {S.WAITING_ASSIGNMENT}
    assert LEGACY_ASSIGNABLE_STATES == {S.WAITING_ASSIGNMENT, S.WAITING_REAL_USER_REPLY}


def test_idle_release_never_touches_chats_waiting_for_the_user() -> None:
    # The seed's "idle detection without false positives".
    assert not is_legal(S.WAITING_REAL_USER_REPLY, E.IDLE_RELEASE, legacy=True)


def test_string_values_are_accepted_and_unknown_ones_rejected() -> None:
    assert next_state("assigned", "operator_reply") is S.WAITING_REAL_USER_REPLY
    with pytest.raises(ChatLabError, match="unknown chat state 'nonsense'"):
        next_state("nonsense", "assign")
    with pytest.raises(ChatLabError, match="unknown chat event 'fly'"):
        is_legal("assigned", "fly")


def test_state_pairs_is_what_a_trigger_can_check() -> None:
    assert (S.ASSIGNED, S.WAITING_REAL_USER_REPLY) in state_pairs()
    assert (S.WAITING_REAL_USER_REPLY, S.ASSIGNED) in state_pairs(legacy=True)
    assert (S.WAITING_REAL_USER_REPLY, S.ASSIGNED) not in state_pairs(legacy=False)
    assert all(src is not S.COMPLETED for src, _ in state_pairs())
