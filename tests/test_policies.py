"""Each policy's choice on small hand-built queues (sim/policies.py, the reference for SQL too)."""

from __future__ import annotations

import pytest

from sim.errors import InvalidArgument, UnknownPolicy
from sim.policies import POLICY_NAMES, ChatView, OperatorView, Snapshot, make_policy, parse_policy_list, random_rank
from sim.statemachine import State

WA, WR, AS = State.WAITING_ASSIGNMENT, State.WAITING_REAL_USER_REPLY, State.ASSIGNED


def snap(chats, operators=None, now: float = 1000.0, salt: int = 0) -> Snapshot:
    ops = operators or (OperatorView(1), OperatorView(2), OperatorView(3))
    return Snapshot(now, tuple(chats), tuple(ops), salt)


# chat 10: replied by op 1, waiting for its user, oldest;  chat 11: waiting, last handled by op 1;
# chat 12: waiting, new;  chat 13: assigned (never eligible)
QUEUE = (
    ChatView(10, WR, waiting_since=100.0, last_operator_id=1),
    ChatView(11, WA, waiting_since=200.0, last_operator_id=1),
    ChatView(12, WA, waiting_since=300.0),
    ChatView(13, AS, waiting_since=50.0, last_operator_id=2),
)


def test_legacy_takes_the_oldest_unassigned_chat_even_one_waiting_for_its_user() -> None:
    assert make_policy("legacy").pick(snap(QUEUE), 1) == 10  # the "same chat again" bug
    assert make_policy("legacy").pick(snap(QUEUE[1:]), 1) == 11  # and no exclusion either


def test_exclude_last_skips_replied_and_own_chats() -> None:
    policy = make_policy("exclude_last")
    assert policy.pick(snap(QUEUE), 1) == 12  # 10 waits for its user, 11 was op 1's
    assert policy.pick(snap(QUEUE), 2) == 11  # oldest waiting chat for anyone else
    assert policy.pick(snap(QUEUE[:2]), 1) is None


def test_queue_ties_are_broken_by_chat_id() -> None:
    chats = (ChatView(8, WA, 5.0), ChatView(7, WA, 5.0), ChatView(9, WA, 4.0))
    assert make_policy("exclude_last").pick(snap(chats), 1) == 9
    assert make_policy("exclude_last").pick(snap(chats[:2]), 1) == 7


@pytest.mark.parametrize("now, expected", [(1000.0, 11), (500.0, 11), (499.0, 12)])
def test_fallback_allows_the_last_operator_only_after_waiting_long_enough(now: float, expected: int) -> None:
    policy = make_policy("exclude_last_fallback", fallback_after=300.0)
    # chat 11 waited since 200: at now >= 500 op 1 may have it back, and it is older than 12
    assert policy.pick(snap(QUEUE, now=now), 1) == expected
    only_own = (QUEUE[1],)
    assert policy.pick(snap(only_own, now=499.0), 1) is None
    assert policy.pick(snap(only_own, now=500.0), 1) == 11
    assert policy.params == {"fallback_after": 300.0}


def test_random_orders_by_salted_md5_and_the_salt_changes_the_choice() -> None:
    chats = tuple(ChatView(i, WA, float(i)) for i in range(1, 30))
    policy = make_policy("random")
    for salt in (0, 1, 12345):
        expected = min(range(1, 30), key=lambda i: (random_rank(salt, i), i))
        assert policy.pick(snap(chats, salt=salt), 1) == expected
    picks = {policy.pick(snap(chats, salt=s), 1) for s in range(40)}
    assert len(picks) > 10  # not always the oldest
    assert policy.pick(snap(QUEUE), 1) == 12  # still the fix's eligibility


def test_round_robin_serves_the_least_recently_assigned_operator_first() -> None:
    ops = (OperatorView(1, last_assigned_at=50.0), OperatorView(2, last_assigned_at=10.0),
           OperatorView(3, last_assigned_at=None))
    chats = (ChatView(20, WA, 1.0), ChatView(21, WA, 2.0))
    policy = make_policy("round_robin")
    s = snap(chats, ops)
    assert policy.matching(s) == {3: 20, 2: 21}  # never-assigned first, then the oldest assignment
    assert [policy.pick(s, op) for op in (1, 2, 3)] == [None, 21, 20]


def test_least_loaded_prefers_fewest_active_chats() -> None:
    ops = (OperatorView(1, active_chats=0, max_chats=3, last_assigned_at=90.0),
           OperatorView(2, active_chats=2, max_chats=3, last_assigned_at=1.0),
           OperatorView(3, active_chats=0, max_chats=3, last_assigned_at=80.0))
    chats = (ChatView(20, WA, 1.0),)
    policy = make_policy("least_loaded")
    # ops 1 and 3 are both empty: the tie goes to the least recently assigned (op 3)
    assert [policy.pick(snap(chats, ops), op) for op in (1, 2, 3)] == [None, None, 20]


def test_longest_idle_prefers_the_oldest_activity_and_skips_full_or_offline_operators() -> None:
    ops = (OperatorView(1, last_activity_at=5.0, online=False),
           OperatorView(2, last_activity_at=10.0, active_chats=1, max_chats=1),
           OperatorView(3, last_activity_at=30.0), OperatorView(4, last_activity_at=20.0))
    chats = (ChatView(20, WA, 1.0),)
    policy = make_policy("longest_idle")
    assert [policy.pick(snap(chats, ops), op) for op in (1, 2, 3, 4)] == [None, None, None, 20]


def test_operator_ordered_policies_respect_exclusion_in_the_matching() -> None:
    # op 3 is first in line but chat 11 was its own: it takes 12, op 2 gets 11
    ops = (OperatorView(2, last_assigned_at=5.0), OperatorView(3, last_assigned_at=None))
    chats = (ChatView(11, WA, 1.0, last_operator_id=3), ChatView(12, WA, 2.0), ChatView(10, WR, 0.0))
    assert make_policy("round_robin").matching(snap(chats, ops)) == {3: 12, 2: 11}


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_no_policy_serves_an_offline_or_full_requester_or_picks_assigned_chats(name: str) -> None:
    policy = make_policy(name)
    ops = (OperatorView(1, online=False), OperatorView(2, active_chats=1, max_chats=1), OperatorView(3))
    assert policy.pick(snap(QUEUE, ops), 1) is None
    assert policy.pick(snap(QUEUE, ops), 2) is None
    assert policy.pick(snap(QUEUE, ops), 3) != 13
    assert policy.pick(snap((), ops), 3) is None
    assert policy.pick(snap(QUEUE, ops), 99) is None  # unknown to the snapshot


def test_unknown_policy_names_and_parameters_are_user_errors() -> None:
    with pytest.raises(UnknownPolicy, match="expected one of: legacy"):
        make_policy("fifo")
    with pytest.raises(InvalidArgument, match="fallback_after"):  # CL006, as the SQL function says
        make_policy("exclude_last_fallback", fallback_after=-1)
    with pytest.raises(UnknownPolicy, match="does not take parameters"):
        make_policy("exclude_last", fallback_after=3)
    assert parse_policy_list("legacy, exclude_last,legacy") == ["legacy", "exclude_last"]
    with pytest.raises(UnknownPolicy):
        parse_policy_list("legacy,nope")


def test_operator_ordered_pick_is_the_full_matching_up_to_the_requester() -> None:
    """``pick`` plays only the operators ahead of the requester (a heap, stopping when the queue is
    used up); on random floors — skills, weights, capacities, priorities, SLA order, fair limits,
    exclusions — it gives exactly what the full greedy matching gives every operator."""
    import random

    from sim.routing import Routing

    rng = random.Random(16)
    routings = [Routing(), Routing(relax_after=30.0), Routing(sla_targets=(60.0, 10.0)),
                Routing(fair_limit=2, fair_window=600.0), Routing(sticky_for=300.0)]
    checked = 0
    for case in range(300):
        ops = tuple(OperatorView(i, online=rng.random() < 0.9, active_chats=rng.randint(0, 3), max_chats=3,
                                 last_assigned_at=rng.choice([None, *range(0, 900, 50)]),
                                 last_activity_at=rng.choice([None, *range(0, 900, 70)]),
                                 skills=frozenset(rng.sample(["en", "fr", "vip"], rng.randint(0, 2))),
                                 recent_assignments=rng.randint(0, 3))
                    for i in range(1, rng.randint(2, 12)))
        chats = tuple(ChatView(100 + j, rng.choice([WA, WA, WA, WR]), waiting_since=float(rng.randint(0, 990)),
                               last_operator_id=rng.choice([None, *range(1, len(ops) + 1)]),
                               skill=rng.choice([None, None, "en", "fr"]), priority=rng.randint(0, 1),
                               weight=rng.randint(1, 2), created_at=float(rng.randint(700, 990)),
                               sticky_operator_id=rng.choice([None, 1, 2]))
                      for j in range(rng.randint(0, 10)))
        s = snap(chats, ops)
        for name in ("round_robin", "least_loaded", "longest_idle"):
            policy = make_policy(name, routings[case % len(routings)])
            full = policy.matching(s)
            for op in ops:
                expected = full.get(op.operator_id) if policy._requester(s, op.operator_id) else None
                assert policy.pick(s, op.operator_id) == expected, (case, name, op.operator_id)
                checked += expected is not None
    assert checked > 300  # the floors were busy enough to hand out chats
