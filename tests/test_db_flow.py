"""Every SQL function on a real server, starting with the seed's five-step manual test."""

from __future__ import annotations

import pandas as pd

from chatlab.db.client import EPOCH, ChatDB
from sim.eventlog import COLUMNS, validate
from sim.statemachine import State

WA, AS, WR, CO = (State.WAITING_ASSIGNMENT, State.ASSIGNED, State.WAITING_REAL_USER_REPLY, State.COMPLETED)


def test_seed_manual_test_flow(db: ChatDB):
    db.set_clock(0)
    op_a = db.create_operator("operator-a")
    other = db.real_user_message(7, "an older chat from someone else")
    db.set_clock(1)
    chat = db.real_user_message(1, "hello, I need help")
    # 1. real user sends a message -> waiting_assignment
    assert db.state_of(chat) is WA
    # (someone else takes the older chat so that operator A gets the test chat)
    op_b = db.create_operator("operator-b")
    assert db.assign_chat_to_operator(op_b) == other
    # 2. operator A gets the assignment
    db.set_clock(5)
    assert db.assign_chat_to_operator(op_a) == chat
    row = db.chat(chat)
    assert row["chat_state"] == "assigned" and row["assigned_operator_id"] == op_a
    # 3. operator A replies -> waiting_real_user_reply, no holder, replied_at set
    db.set_clock(10)
    db.operator_message(op_a, chat, "how can I help?")
    row = db.chat(chat)
    assert row["chat_state"] == "waiting_real_user_reply"
    assert row["assigned_operator_id"] is None and row["last_operator_id"] == op_a
    assert row["operator_replied_at"] == EPOCH + pd.Timedelta(seconds=10)
    # 4. operator A asks again -> a DIFFERENT chat (here: a new one), never the test chat
    db.set_clock(11)
    newer = db.real_user_message(2, "another user")
    assert db.assign_chat_to_operator(op_a) == newer != chat
    # 5. the real user replies -> waiting_assignment again (with a new queue position)
    db.set_clock(20)
    db.real_user_message(1, "thanks, one more thing", chat)
    assert db.state_of(chat) is WA
    assert db.chat(chat)["waiting_since"] == EPOCH + pd.Timedelta(seconds=20)


def test_legacy_reproduces_the_same_chat_again_bug(db: ChatDB):
    op = db.create_operator("a")
    chat = db.real_user_message(1, "hi")
    assert db.assign_chat_to_operator(op, "legacy") == chat
    db.operator_message(op, chat, "answer")
    assert db.assign_chat_to_operator(op, "legacy") == chat  # the bug: nothing to answer, same chat
    events = db.events()
    assigns = events[events["event"] == "assign"]
    assert list(assigns["from_state"].astype(str)) == ["waiting_assignment", "waiting_real_user_reply"]
    # the fix never does that
    db.operator_message(op, chat, "again")
    assert db.assign_chat_to_operator(op, "exclude_last") is None


def test_exclude_last_skips_own_chat_and_fallback_allows_it_after_t(db: ChatDB):
    db.set_clock(0)
    op = db.create_operator("only")
    chat = db.real_user_message(1, "hi")
    db.assign_chat_to_operator(op)
    db.unassign_chat(op, chat)  # back in the queue, last operator = op (waiting since 0)
    assert db.assign_chat_to_operator(op, "exclude_last") is None
    db.set_clock(299)
    assert db.assign_chat_to_operator(op, "exclude_last_fallback", 300) is None
    db.set_clock(300)
    assert db.assign_chat_to_operator(op, "exclude_last_fallback", 300) == chat


def test_operator_ordered_policies_on_a_hand_built_state(db: ChatDB):
    db.set_clock(0)
    a = db.create_operator("a", max_chats=2)
    b = db.create_operator("b", max_chats=2)
    c1 = db.real_user_message(1, "one")
    db.set_clock(1)
    c2 = db.real_user_message(2, "two")
    db.set_clock(2)
    c3 = db.real_user_message(3, "three")
    assert db.assign_chat_to_operator(a) == c1  # a: 1 chat, last assigned at 2
    db.set_clock(3)
    db.touch_operator(b)  # b active at 3, never assigned
    # least_loaded: b (0 chats) goes first and would take c2, so a gets c3
    with db.conn.transaction(force_rollback=True):
        assert db.assign_chat_to_operator(a, "least_loaded") == c3
    # round_robin: b (never assigned) first -> a gets c3 as well; b gets c2
    with db.conn.transaction(force_rollback=True):
        assert db.assign_chat_to_operator(b, "round_robin") == c2
    # longest_idle: a's last activity is its creation (0) < b's (3): a first -> oldest c2
    with db.conn.transaction(force_rollback=True):
        assert db.assign_chat_to_operator(a, "longest_idle") == c2
    # random: the md5 order of the salt decides, among the fix's eligible chats
    import hashlib

    expected = min([c2, c3], key=lambda c: (hashlib.md5(f"17:{c}".encode()).hexdigest(), c))
    assert db.assign_chat_to_operator(b, "random", salt=17) == expected


def test_capacity_and_offline_return_null_not_error(db: ChatDB):
    op = db.create_operator("a", max_chats=1)
    c1 = db.real_user_message(1, "x")
    db.real_user_message(2, "y")
    assert db.assign_chat_to_operator(op) == c1
    assert db.assign_chat_to_operator(op) is None  # at capacity
    db.set_operator_online(op, False)
    assert db.state_of(c1) is WA  # going offline released it
    assert db.assign_chat_to_operator(op) is None  # offline
    assert db.active_chats(op) == []


def test_going_offline_releases_with_unassign_and_online_counts_as_activity(db: ChatDB):
    db.set_clock(0)
    op = db.create_operator("a", max_chats=3)
    chats = [db.real_user_message(i, "x") for i in range(3)]
    for _ in chats:
        db.assign_chat_to_operator(op)
    db.operator_message(op, chats[0], "replied")
    db.set_clock(50)
    assert db.set_operator_online(op, False) == 2
    assert [db.state_of(c) for c in chats] == [WR, WA, WA]
    ev = db.events()
    rel = ev[(ev["event"] == "unassign")]
    assert set(rel["reason"].astype(str)) == {"operator_offline"} and len(rel) == 2
    assert ev["event"].astype(str).iloc[-1] == "operator_offline"
    db.set_clock(60)
    db.set_operator_online(op, True)
    assert db.operator(op)["last_activity_at"] == EPOCH + pd.Timedelta(seconds=60)
    history = db.assignments(chats[1])
    assert history[-1]["release_reason"] == "operator_offline"


def test_activity_rules(db: ChatDB):
    db.set_clock(0)
    op = db.create_operator("a")
    chat = db.real_user_message(1, "x")
    db.set_clock(10)
    db.assign_chat_to_operator(op)
    assert db.operator(op)["last_activity_at"] == EPOCH  # creation; polling for work is not activity
    assert db.operator(op)["last_assigned_at"] == EPOCH + pd.Timedelta(seconds=10)
    db.set_clock(20)
    db.touch_operator(op)
    assert db.operator(op)["last_activity_at"] == EPOCH + pd.Timedelta(seconds=20)
    db.set_clock(30)
    db.unassign_chat(op, chat)
    assert db.operator(op)["last_activity_at"] == EPOCH + pd.Timedelta(seconds=30)


def test_idle_release_never_touches_chats_waiting_for_the_user(db: ChatDB):
    db.set_clock(0)
    idle = db.create_operator("idle", max_chats=2)
    busy = db.create_operator("busy")
    held = db.real_user_message(1, "held")
    replied = db.real_user_message(2, "replied")
    other = db.real_user_message(3, "other")
    assert db.assign_chat_to_operator(idle) == held
    assert db.assign_chat_to_operator(idle) == replied
    db.operator_message(idle, replied, "answer")  # last activity of idle: 0
    assert db.assign_chat_to_operator(busy) == other
    db.set_clock(200)
    db.touch_operator(busy)
    db.set_clock(400)
    assert db.release_idle_operator_chats(401) == 0  # nobody inactive for 401 s (idle: 400, busy: 200)
    assert db.operator(idle)["is_online"] is True
    assert db.release_idle_operator_chats(300) == 1  # only idle's one ASSIGNED chat
    assert db.state_of(held) is WA
    assert db.state_of(replied) is WR  # the seed's "no false positives"
    assert db.chat(held)["last_operator_id"] == idle
    assert db.operator(idle)["is_online"] is False
    assert db.state_of(other) is AS and db.operator(busy)["is_online"] is True
    ev = db.events()
    idle_rows = ev[ev["event"] == "idle_release"]
    assert list(idle_rows["chat_id"]) == [held] and list(idle_rows["from_state"].astype(str)) == ["assigned"]
    assert db.assignments(held)[-1]["release_reason"] == "idle"


def test_stuck_detection_and_release_with_a_pinned_clock(db: ChatDB):
    db.set_clock(0)
    op = db.create_operator("a", max_chats=2)
    old = db.real_user_message(1, "old")
    db.assign_chat_to_operator(op)
    db.set_clock(1800)
    young = db.real_user_message(2, "young")
    db.assign_chat_to_operator(op)
    db.set_clock(3600)
    assert db.detect_stuck_chats(1) == []  # exactly one hour is not "older than"
    db.set_clock(3601)
    stuck = db.detect_stuck_chats(1)
    assert [(s.chat_id, s.operator_id, s.stuck_seconds) for s in stuck] == [(old, op, 3601.0)]
    assert [s.chat_id for s in db.detect_stuck_chats(0.25)] == [old, young]
    assert db.release_and_reassign_chat(old, "manual_fix") == op
    assert db.state_of(old) is WA and db.chat(old)["last_operator_id"] == op
    assert db.assignments(old)[-1]["release_reason"] == "manual_fix"
    ev = db.events()
    row = ev[ev["event"] == "stuck_release"].iloc[0]
    assert (row["chat_id"], row["operator_id"], row["reason"]) == (old, op, "manual_fix")
    assert db.detect_stuck_chats(1) == []


def test_end_chat_from_every_open_state(db: ChatDB):
    op = db.create_operator("a", max_chats=3)
    waiting = db.real_user_message(1, "w")
    assigned = db.real_user_message(2, "a")
    replied = db.real_user_message(3, "r")
    db.assign_chat_to_operator(op)
    db.assign_chat_to_operator(op)
    db.assign_chat_to_operator(op)
    db.unassign_chat(op, waiting)
    db.operator_message(op, replied, "answer")
    for chat, reason in ((waiting, "abandoned"), (assigned, "resolved"), (replied, "resolved")):
        db.end_chat(chat, reason)
        row = db.chat(chat)
        assert row["chat_state"] == "completed" and row["is_active"] is False
        assert row["assigned_operator_id"] is None
    assert db.chat(assigned)["last_operator_id"] == op
    assert db.assignments(assigned)[-1]["release_reason"] == "end"
    ends = db.events().query("event == 'end'")
    assert list(ends["operator_id"].astype("object").where(ends["operator_id"].notna(), None)) == [None, op, None]


def test_user_message_keeps_queue_position_unless_it_was_waiting_for_the_user(db: ChatDB):
    db.set_clock(0)
    op = db.create_operator("a")
    chat = db.real_user_message(1, "first")
    db.set_clock(5)
    db.real_user_message(1, "second", chat)
    assert db.chat(chat)["waiting_since"] == EPOCH and db.state_of(chat) is WA
    db.assign_chat_to_operator(op)
    db.set_clock(6)
    db.real_user_message(1, "third", chat)
    assert db.state_of(chat) is AS and db.chat(chat)["waiting_since"] == EPOCH
    assert db.chat(chat)["last_user_message_at"] == EPOCH + pd.Timedelta(seconds=6)
    n_messages = db._rows("SELECT count(*) FROM messages WHERE chat_id = %s", (chat,))[0][0]
    assert n_messages == 3


def test_queue_status_and_state_summary(db: ChatDB):
    db.set_clock(0)
    a = db.create_operator("a", max_chats=2)
    db.create_operator("b", max_chats=1, online=False)
    c1 = db.real_user_message(1, "x")
    db.set_clock(10)
    db.real_user_message(2, "y")
    db.set_clock(20)
    db.real_user_message(3, "z")
    db.assign_chat_to_operator(a)
    db.operator_message(a, c1, "done")
    db.set_clock(40)
    status = db.get_assignment_queue_status()
    assert status["waiting_chats"] == 2 and status["waiting_real_user_reply"] == 1
    assert status["assigned_chats"] == 0 and status["completed_chats"] == 0
    assert status["longest_wait_seconds"] == 30.0 and status["average_wait_seconds"] == 25.0
    assert status["online_operators"] == 1 and status["operators_with_capacity"] == 1
    assert status["free_capacity"] == 2
    summary = {r["chat_state"]: r["chat_count"] for r in db.chat_state_summary()}
    assert summary == {"waiting_assignment": 2, "assigned": 0, "waiting_real_user_reply": 1, "completed": 0}


def test_verify_passes_on_a_busy_schema(db: ChatDB):
    ops = [db.create_operator(f"o{i}", max_chats=2) for i in range(3)]
    chats = [db.real_user_message(i, "x") for i in range(6)]
    for op in ops:
        db.assign_chat_to_operator(op)
    db.operator_message(ops[0], chats[0], "r")
    db.end_chat(chats[1])
    checks = db.verify()
    assert len(checks) >= 10 and all(c.passed for c in checks), [c for c in checks if not c.passed]


def test_event_log_has_the_simulation_schema(db: ChatDB):
    db.set_clock(100)
    op = db.create_operator("a")
    chat = db.real_user_message(1, "x")
    db.set_clock(105.5)
    db.assign_chat_to_operator(op)
    db.set_clock(110)
    db.operator_message(op, chat, "y")
    db.end_chat(chat, "resolved")
    log = db.events()
    validate(log)
    assert tuple(log.columns) == COLUMNS
    assert list(log["event"].astype(str)) == ["operator_online", "user_message", "assign", "operator_reply", "end"]
    assert list(log["time"]) == [100.0, 100.0, 105.5, 110.0, 110.0]
    assert pd.isna(log["chat_id"].iloc[0]) and pd.isna(log["from_state"].iloc[1])
    assert list(log["operator_id"].iloc[2:4]) == [op, op]


def test_event_log_feeds_the_metrics_module(db: ChatDB):
    from chatlab.metrics import analyse

    db.set_clock(0)
    a, b = db.create_operator("a"), db.create_operator("b")
    for i in range(4):
        db.set_clock(i * 10)
        chat = db.real_user_message(i, "x")
        op = a if i % 2 == 0 else b
        db.set_clock(i * 10 + 3)
        assert db.assign_chat_to_operator(op) == chat
        db.set_clock(i * 10 + 5)
        db.operator_message(op, chat, "y")
        db.end_chat(chat, "resolved")
    run = analyse(db.events())
    assert run.metrics["counts"]["resolved"] == 4


def test_the_epoch_is_defined_once_on_each_side_and_they_agree(db: ChatDB):
    """Python's chatlab.db.clock.EPOCH and SQL's chatlab_epoch() (migration 018) are one instant,
    and lab seconds round-trip through the database clock."""
    assert db.epoch() == EPOCH
    db.set_clock(12.25)
    assert db.now() == 12.25
    assert db._rows("SELECT chatlab_seconds(chatlab_now())")[0][0] == 12.25

