"""The SQL system and the Python reference are the same machine.

* Transitions: for EVERY (state, event) pair and both legacy flags, ``chat_next_state``
  and the guard trigger on ``chats`` accept exactly what ``sim.statemachine`` accepts,
  and lead to the same state.
* Policies: on random states built through the SQL functions, ``assign_chat_to_operator``
  picks the same chat as ``sim.policies.make_policy(name).pick(read_snapshot(...), op)``
  for all seven policies and every operator.
"""

from __future__ import annotations

import itertools
import os

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st

from chatlab.db.client import ChatDB
from chatlab.db.snapshot import read_snapshot
from sim.policies import KNOWN_NAMES, POLICY_NAMES, make_policy
from sim.routing import Routing
from sim.errors import ChatCompleted, ChatLabError, IllegalTransition
from sim.statemachine import TRANSITIONS, Event, State, is_legal, next_state

PAIRS = list(itertools.product(State, Event))


def test_transition_table_in_sql_equals_python(db):
    rows = db._rows("SELECT state, event, next_state, legacy_only FROM chat_transitions")
    sql_table = {(State(s), Event(e)): (State(n), bool(lo)) for s, e, n, lo in rows}
    py_table = {k: (t.target, t.legacy_only) for k, t in TRANSITIONS.items()}
    assert sql_table == py_table


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s.value}-{e.value}" for s, e in PAIRS])
def test_chat_next_state_agrees(db, state, event, legacy):
    if is_legal(state, event, legacy=legacy):
        assert db.chat_next_state(state, event, legacy) == next_state(state, event, legacy=legacy)
    else:
        expected = ChatCompleted if state is State.COMPLETED else IllegalTransition
        with pytest.raises(expected) as info:
            db.chat_next_state(state, event, legacy)
        assert info.value.state is state and info.value.event is event
        with pytest.raises(expected) as mine:  # the Python table raises the very same class
            next_state(state, event, legacy=legacy)
        assert type(mine.value) is type(info.value) and str(mine.value).split(": ", 1)[1] == str(info.value).split(": ", 1)[1]


def _chat_in(db: ChatDB, state: State) -> tuple[int, int]:
    """A chat in ``state`` built through the functions; returns (chat, operator)."""
    op = db.create_operator("x", max_chats=5)
    chat = db.real_user_message(1, "hi")
    if state in (State.ASSIGNED, State.WAITING_REAL_USER_REPLY):
        assert db.assign_chat_to_operator(op) == chat
    if state is State.WAITING_REAL_USER_REPLY:
        db.operator_message(op, chat, "answer")
    if state is State.COMPLETED:
        db.end_chat(chat)
    assert db.state_of(chat) is state
    return chat, op


_COLUMNS_FOR = {  # a row consistent with each target state, so only the trigger can object
    State.WAITING_ASSIGNMENT: "assigned_operator_id = NULL, is_active = true",
    State.ASSIGNED: "assigned_operator_id = %(op)s, is_active = true",
    State.WAITING_REAL_USER_REPLY: ("assigned_operator_id = NULL, is_active = true, last_operator_id = %(op)s, "
                                    "operator_replied_at = coalesce(operator_replied_at, now())"),
    State.COMPLETED: "assigned_operator_id = NULL, is_active = false",
}


def _trigger_accepts(db: ChatDB, chat: int, op: int, event: Event | None, legacy: bool, target: State) -> bool:
    query = f"UPDATE chats SET chat_state = %(target)s, {_COLUMNS_FOR[target]} WHERE id = %(chat)s"
    try:
        with db.conn.transaction():
            db.conn.execute("SELECT set_config('chatlab.event', %s, true), set_config('chatlab.legacy', %s, true)",
                            ("" if event is None else event.value, "on" if legacy else "off"))
            db.conn.execute(query.encode(), {"target": target.value, "op": op, "chat": chat})
            raise psycopg.Rollback()
    except psycopg.Error as exc:
        if exc.sqlstate != "CL004":
            raise
        return False
    return True


@pytest.mark.parametrize("state", list(State), ids=[s.value for s in State])
def test_trigger_agrees_for_every_event_and_target(db, state):
    chat, op = _chat_in(db, state)
    for event, legacy, target in itertools.product(Event, [False, True], State):
        legal = is_legal(state, event, legacy=legacy) and next_state(state, event, legacy=legacy) is target
        assert _trigger_accepts(db, chat, op, event, legacy, target) == legal, (state, event, legacy, target)
    # Without an announced event a hand-written UPDATE may only make a non-legacy move.
    for target in State:
        moves = {t.target for t in TRANSITIONS.values() if t.source is state and not t.legacy_only}
        assert _trigger_accepts(db, chat, op, None, False, target) == (target is state or target in moves)
    assert db.state_of(chat) is state  # every attempt was rolled back


def test_trigger_rejects_new_chat_not_waiting(db):
    with pytest.raises(psycopg.Error) as info:
        db.conn.execute("INSERT INTO chats (real_user_id, chat_state, waiting_since, is_active) "
                        "VALUES (1, 'completed', now(), false)")
    assert info.value.sqlstate == "CL004"


# -- policies -------------------------------------------------------------------------

STEP = st.tuples(st.sampled_from(["new", "assign", "legacy_assign", "reply", "unassign", "user_reply",
                                  "end", "tick", "touch", "offline", "online", "no_answer", "returning"]),
                 st.integers(0, 50), st.integers(0, 400))


#: topic -> (skill, priority class, weight); new chats draw one of these or none
TOPICS = {"general": (None, 0, 1), "billing": ("billing", 0, 1), "tech": ("tech", 1, 1), "vip": (None, 2, 1),
          "vip_tech": ("tech", 2, 1), "video": (None, 0, 2), "vip_video": (None, 2, 3)}
SKILL_SETS = [(), ("billing",), ("tech",), ("billing", "tech")]
#: routing rules drawn per example: sim.routing.Routing's fields
ROUTINGS = st.builds(
    Routing,
    relax_after=st.sampled_from([None, 0.0, 60.0, 300.0]),
    sla_targets=st.sampled_from([None, (300.0, 120.0, 30.0), (60.0, 60.0), (0.0,), (30.0, 0.0, 0.0)]),
    sticky_for=st.sampled_from([None, 0.0, 60.0, 1e6, 1e6]),
    fair_limit=st.sampled_from([None, None, 1, 2]),
    fair_window=st.sampled_from([60.0, 3600.0]))


def _reset(db: ChatDB) -> None:
    db.conn.execute("TRUNCATE chat_events, chat_assignments, messages, chats, operators, topics RESTART IDENTITY")


def _build(db: ChatDB, operators: list[tuple[int, bool, int]], steps: list[tuple[str, int, int]],
           queue: list[tuple[int, int]] = (), returning: list[tuple[int, bool, int, int]] = (),
           late: list[tuple[str, int, int]] = ()) -> list[int]:
    """Apply random but valid operations; returns operator ids.  ``queue``: (topic, seconds
    later) of chats opened first, so contested queues (classes, skills, deadlines) are common;
    ``returning``, last: (operator, close it?, topic, seconds later, then) — that operator
    takes a chat and answers it, its user comes back with a new one, and the operator stays,
    goes offline or takes more work, so known agents (held, or not held by an offline or full
    one) and recent assignments (the fair limit) are common too; ``late`` steps follow."""
    t = 0
    db.set_clock(t)
    for name, (skill, priority, weight) in TOPICS.items():
        db.define_topic(name, skill, priority, weight)
    for k, (topic, dt) in enumerate(queue):
        t += dt
        db.set_clock(t)
        db.real_user_message(10_000 + k, "hello", None, [None, *TOPICS][topic % (len(TOPICS) + 1)])
    ops = [db.create_operator(f"op{i}", max_chats=m, skills=SKILL_SETS[k % len(SKILL_SETS)])
           for i, (m, _, k) in enumerate(operators)]
    for op, (_, online, _) in zip(ops, operators):
        if not online:
            db.set_operator_online(op, False)
    user = itertools.count(1)

    def apply(kind: str, a: int, dt: int) -> None:
        nonlocal t
        op = ops[a % len(ops)]
        chats = db.chats()
        held = [c["id"] for c in chats if c["assigned_operator_id"] == op]
        if kind == "tick":
            t += dt
            db.set_clock(t)
        elif kind == "new":
            topic = [None, *TOPICS][a % (len(TOPICS) + 1)]
            db.real_user_message(next(user), "hello", None, topic)
        elif kind == "returning":  # a user whose chat an operator handled opens a new one (known agent)
            handled = [c for c in chats if c["assigned_operator_id"] or c["last_operator_id"]]
            if handled:
                topic = [None, *TOPICS][dt % (len(TOPICS) + 1)]
                db.real_user_message(handled[a % len(handled)]["real_user_id"], "again", None, topic)
        elif kind == "no_answer":
            db.release_unanswered_chats(float(dt % 120))
        elif kind in ("assign", "legacy_assign"):
            db.assign_chat_to_operator(op, "legacy" if kind == "legacy_assign" else "exclude_last")
        elif kind == "reply" and held:
            db.operator_message(op, held[a % len(held)], "answer")
        elif kind == "unassign" and held:
            db.unassign_chat(op, held[a % len(held)])
        elif kind == "user_reply":
            waiting = [c for c in chats if c["chat_state"] == "waiting_real_user_reply"]
            if waiting:
                c = waiting[a % len(waiting)]
                db.real_user_message(c["real_user_id"], "more", c["id"])
        elif kind == "end":
            open_ = [c["id"] for c in chats if c["chat_state"] != "completed"]
            if open_:
                db.end_chat(open_[a % len(open_)], "resolved")
        elif kind == "touch":
            db.touch_operator(op)
        elif kind in ("offline", "online"):
            db.set_operator_online(op, kind == "online")

    for step in steps:
        apply(*step)
    for k, close, topic, dt, then in returning:
        op = ops[k % len(ops)]
        chat = db.assign_chat_to_operator(op)
        if chat is not None:
            db.operator_message(op, chat, "answer")
            if close:
                db.end_chat(chat, "resolved")
            t += dt
            db.set_clock(t)
            owner = next(c["real_user_id"] for c in db.chats() if c["id"] == chat)
            db.real_user_message(owner, "again", None, [None, *TOPICS][topic % (len(TOPICS) + 1)])
            if then == "offline":  # the known agent leaves: it holds nothing
                db.set_operator_online(op, False)
            elif then == "busy":   # it takes more work (perhaps all its capacity)
                db.assign_chat_to_operator(op, "exclude_last")
    for step in late:  # then anything may happen to those agents (offline, full, a tick)
        apply(*step)
    return ops


def _sql_pick(db: ChatDB, op: int, policy: str, fallback_after: float, salt: int,
              routing: Routing = Routing()) -> int | None:
    with db.conn.transaction(force_rollback=True):
        return db.assign_chat_to_operator(op, policy, fallback_after, salt, routing.relax_after, routing.sla_targets,
                                          routing.sticky_for, routing.fair_limit, routing.fair_window)


@settings(max_examples=int(os.environ.get("CHATLAB_AGREE_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(operators=st.lists(st.tuples(st.integers(1, 3), st.booleans(), st.integers(0, 3)), min_size=1, max_size=4),
       steps=st.lists(STEP, min_size=0, max_size=30),
       salt=st.integers(-(2**40), 2**40),
       fallback_after=st.sampled_from([0.0, 30.0, 300.0]),
       rules=ROUTINGS,
       queue=st.lists(st.tuples(st.integers(0, 7), st.sampled_from([0, 1, 30, 90])), max_size=6),
       returning=st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.integers(0, 7), st.sampled_from([0, 1, 30]),
                                    st.sampled_from(["stay", "offline", "busy"])), max_size=4),
       late=st.lists(STEP, max_size=4))
def test_every_policy_picks_the_same_chat_as_python(db, operators, steps, salt, fallback_after, rules, queue,
                                                    returning, late):
    """Random states with skills, topics, priority classes, weights and returning users, and random
    routing rules (skill relaxation, SLA deadlines, known agent, fair limit): every policy, every
    operator, the same chat in SQL as in Python."""
    _reset(db)
    ops = _build(db, operators, steps, queue, returning, late)
    routing = rules
    window = routing.fair_window if routing.fair_limit is not None else None
    snapshot = read_snapshot(db, salt=salt, fair_window=window)
    note(f"known agent: {any(routing.reserved_for(c, snapshot) is not None for c in snapshot.chats)}")
    note(f"some chat weighs more than 1: {any(c.weight > 1 for c in snapshot.chats)}")
    note(f"fair limit binds: {any(not routing.takes_more(o) for o in snapshot.operators)}")
    for name in KNOWN_NAMES:  # the lab's policies and the buggy variants alike
        params = {"fallback_after": fallback_after} if name == "exclude_last_fallback" else {}
        policy = make_policy(name, routing, **params)
        for op in ops:
            expected = policy.pick(snapshot, op)
            assert _sql_pick(db, op, name, fallback_after, salt, routing) == expected, (name, op, routing, snapshot)
    assert read_snapshot(db, salt=salt, fair_window=window) == snapshot  # the picks were rolled back


def test_policy_agreement_covers_contention(db):
    """A hand-built case where operator-ordered policies differ from exclude_last."""
    db.set_clock(0)
    a, b = db.create_operator("a"), db.create_operator("b")
    c1 = db.real_user_message(1, "x")
    db.set_clock(10)
    c2 = db.real_user_message(2, "y")
    db.set_clock(20)
    assert db.assign_chat_to_operator(a) == c1  # a was assigned recently; b never
    db.unassign_chat(a, c1)                      # c1 back in the queue, last operator a
    snapshot = read_snapshot(db)
    # round robin: b (never assigned) goes first and takes c1; a gets c2
    assert make_policy("round_robin").pick(snapshot, a) == c2 == _sql_pick(db, a, "round_robin", 300, 0)
    assert make_policy("round_robin").pick(snapshot, b) == c1 == _sql_pick(db, b, "round_robin", 300, 0)


# -- the whole system: SQL functions vs sim/system.ChatSystem ----------------------------

def _outcome(fn):
    try:
        return ("ok", fn())
    except ChatLabError as exc:
        return ("error", type(exc))


def _log_rows(frame):
    import pandas as pd

    return [tuple(None if pd.isna(v) else (v if isinstance(v, (int, float)) else str(v)) for v in row)
            for row in frame.itertuples(index=False)]


@pytest.mark.parametrize("seed", range(25))
def test_random_operation_sequences_agree_with_the_python_system(db, seed):
    """Same calls on both sides: same results, same error kinds, same states, same event log."""
    import random

    from sim.system import ChatSystem

    rng = random.Random(seed)
    sim = ChatSystem()
    t = 0.0
    db.set_clock(t)
    n_ops = rng.randint(1, 4)
    for i in range(n_ops):
        max_chats, online = rng.randint(1, 3), rng.random() < 0.8
        assert sim.create_operator(max_chats=max_chats, online=online, now=t) == db.create_operator(
            f"o{i}", max_chats, online)
    users = itertools.count(1)
    for _ in range(40):
        kind = rng.choice(["new", "assign", "assign", "reply", "unassign", "user", "end", "tick",
                           "touch", "offline", "online", "idle", "stuck"])
        op = rng.randint(1, n_ops + 1)  # sometimes unknown
        chat = rng.randint(1, len(sim.chats) + 1)  # sometimes unknown
        policy, salt, fallback = rng.choice(POLICY_NAMES), rng.randint(0, 99), rng.choice([0.0, 30.0])
        if kind == "tick":
            t += rng.choice([1, 10, 40, 100])
            db.set_clock(t)
            continue
        real_user = sim.chats[chat].real_user_id if chat in sim.chats else 1
        user = next(users)
        calls = {
            "new": (lambda: sim.real_user_message(user, "x", now=t), lambda: db.real_user_message(user, "x")),
            "assign": (lambda: sim.assign(op, policy, now=t, salt=salt, fallback_after=fallback),
                       lambda: db.assign_chat_to_operator(op, policy, fallback, salt)),
            "reply": (lambda: sim.operator_message(op, chat, "y", now=t),
                      lambda: db.operator_message(op, chat, "y") and None),
            "unassign": (lambda: sim.unassign_chat(op, chat, now=t), lambda: db.unassign_chat(op, chat)),
            "user": (lambda: sim.real_user_message(real_user, "z", chat, now=t),
                     lambda: db.real_user_message(real_user, "z", chat)),
            "end": (lambda: sim.end_chat(chat, "resolved", now=t), lambda: db.end_chat(chat, "resolved")),
            "touch": (lambda: sim.touch_operator(op, now=t), lambda: db.touch_operator(op)),
            "offline": (lambda: sim.set_operator_online(op, False, now=t), lambda: db.set_operator_online(op, False)),
            "online": (lambda: sim.set_operator_online(op, True, now=t), lambda: db.set_operator_online(op, True)),
            "idle": (lambda: sim.release_idle_operator_chats(50, now=t), lambda: db.release_idle_operator_chats(50)),
            "stuck": (lambda: sim.release_and_reassign_chat(chat, "manual_fix", now=t),
                      lambda: db.release_and_reassign_chat(chat, "manual_fix")),
        }
        on_sim, on_db = calls[kind]
        assert _outcome(on_sim) == _outcome(on_db), (seed, kind, op, chat, policy)
        for row in db.chats():
            mine = sim.chats[row["id"]]
            assert (mine.state.value, mine.assigned_operator_id, mine.last_operator_id) == (
                row["chat_state"], row["assigned_operator_id"], row["last_operator_id"])
    assert _log_rows(sim.log.to_frame()) == _log_rows(db.events())
