"""Migration 023's operator-ordered matching agrees with Python where it takes its shortcuts.

023 does not replay the greedy matching query by query: it reads the operators ahead of the
requester and the head of the queue once, and without routing rules it only looks at the
places where an operator ahead meets a chat it answered last (a *run* of its own chats), the
one case where the k operators ahead do not simply take the first k chats.  The general
agreement test (tests/test_sql_agreement.py) builds small floors; here the queues are built so
that such runs are common — long runs of one operator's chats, at every rank, at the end of the
head, past it — with more operators, varied loads and turn orders, and every operator's SQL pick
is compared with both the Python policy and the full matching (sim.policies.OperatorOrderedPolicy).
023's other shortcut — the fix's claim behind a head of the requester's own chats — is checked on
such heads too.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatlab.db.client import ChatDB
from chatlab.db.snapshot import read_snapshot
from sim.policies import make_policy

ORDERED = ("round_robin", "least_loaded", "longest_idle", "least_loaded_lifetime", "least_loaded_by_creation")


def _build(db: ChatDB, max_chats: list[int], chats: list[int | None], holds: list[int], order: list[int]) -> list[int]:
    """Operators with ``max_chats``; a queue whose k-th chat was last answered by operator
    ``chats[k]`` (None: never answered); then operators ``holds`` take one chat each (loads,
    turn order); ``order`` touches operators (longest-idle order)."""
    db.conn.execute("TRUNCATE chat_events, chat_assignments, messages, chats, operators, topics RESTART IDENTITY")
    t = 0
    db.set_clock(t)
    ops = [db.create_operator(f"op{i}", max_chats=m) for i, m in enumerate(max_chats)]
    answered = []
    for k, who in enumerate(chats):  # each answered chat: opened, taken by its operator alone, answered
        if who is None:
            continue
        t += 1
        db.set_clock(t)
        chat = db.real_user_message(1000 + k, "hello")
        op = ops[who % len(ops)]
        assert db.assign_chat_to_operator(op) == chat  # the only chat in the queue
        db.operator_message(op, chat, "answer")
        answered.append((k, chat))
    by_place = dict(answered)
    for k, who in enumerate(chats):  # the queue, in this order: users answer, fresh chats open
        t += 1
        db.set_clock(t)
        if who is None:
            db.real_user_message(1000 + k, "hello")
        else:
            db.real_user_message(1000 + k, "more", by_place[k])
    for h in holds:
        t += 1
        db.set_clock(t)
        db.assign_chat_to_operator(ops[h % len(ops)])
    for h in order:
        t += 1
        db.set_clock(t)
        db.touch_operator(ops[h % len(ops)])
    t += 1
    db.set_clock(t)
    return ops


def _runs(n_ops: int) -> st.SearchStrategy[list[int | None]]:
    """Queues of runs: one operator (or never answered) repeated 1..6 times."""
    run = st.tuples(st.one_of(st.none(), st.integers(0, n_ops - 1)), st.integers(1, 6))
    return st.lists(run, max_size=12).map(lambda rs: [who for who, n in rs for _ in range(n)])


@st.composite
def floors(draw):
    n_ops = draw(st.integers(2, 12))
    return (draw(st.lists(st.integers(1, 3), min_size=n_ops, max_size=n_ops)), draw(_runs(n_ops)),
            draw(st.lists(st.integers(0, n_ops - 1), max_size=6)),
            draw(st.lists(st.integers(0, n_ops - 1), max_size=6)))


@settings(max_examples=int(os.environ.get("CHATLAB_AGREE_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(floor=floors())
def test_operator_ordered_picks_agree_on_queues_of_runs(db, floor):
    max_chats, chats, holds, order = floor
    ops = _build(db, max_chats, chats, holds, order)
    snapshot = read_snapshot(db)
    for name in ORDERED:
        policy = make_policy(name)
        full = policy.matching(snapshot)
        for op in ops:
            with db.conn.transaction(force_rollback=True):
                got = db.assign_chat_to_operator(op, name)
            assert got == policy.pick(snapshot, op) == full.get(op), (name, op, snapshot)


@pytest.mark.parametrize("max_chats, chats, holds, queue_last, expected", [
    # A, B, R: A takes the oldest; B skips its own run and takes the fourth; R gets the second,
    # not the third that "k-th operator, k-th chat" would give it
    ([1, 1, 1], [None, 1, 1, None, 2], [], [None, 1, 1, None, 2], 1),
    # A, B, C, R: A skips its chat and takes the second (B's); B takes A's; C takes the third;
    # R the fourth — B's own chats after A's are not a run B meets (it is served before them)
    ([1, 1, 1, 1], [0, 1, 1, 1, 2, 3], [], [0, 1, 1, 1, 2, 3], 3),
    # A, B, R (R took the oldest chat last): B's run ends the queue, B takes nothing, R gets B's first
    ([1, 1, 2], [None, None, 1, 1], [2], [None, 1, 1], 1),
])
def test_runs_at_the_end_of_the_head(db, max_chats, chats, holds, queue_last, expected):
    """Round robin; the operators' turn order is the order they were last given a chat (never: first)."""
    ops = _build(db, max_chats, chats, holds, [])
    snapshot = read_snapshot(db)
    queue = sorted((c for c in snapshot.chats if c.state.value == "waiting_assignment"),
                   key=lambda c: (c.waiting_since, c.chat_id))
    assert [c.last_operator_id for c in queue] == [None if w is None else ops[w] for w in queue_last]
    with db.conn.transaction(force_rollback=True):
        got = db.assign_chat_to_operator(ops[-1], "round_robin")
    assert got == queue[expected].chat_id == make_policy("round_robin").pick(snapshot, ops[-1])


@pytest.mark.parametrize("chats", [
    [0, 0, 0, None, 1, None],   # the requester's run, then a fresh chat, then another operator's
    [0, 0, 1, None, 0],         # the requester's run, then another operator's chat
    [0, 0, 0],                  # nothing but the requester's own chats: nothing for it
    [0, 0, 2, 1, None],         # another operator's chats, the later one of a lower id
])
def test_the_fix_behind_a_head_of_the_requesters_own_chats(db, chats):
    """023 finds the first chat behind such a head without walking it (one probe per other last
    operator and one for never-answered chats): the same chat as Python's, for every operator."""
    ops = _build(db, [1, 1, 1], chats, [], [])
    snapshot = read_snapshot(db)
    for name in ("exclude_last", "exclude_last_unlocked"):
        policy = make_policy(name)
        for op in ops:
            with db.conn.transaction(force_rollback=True):
                got = db.assign_chat_to_operator(op, name)
            assert got == policy.pick(snapshot, op), (name, op, snapshot)
