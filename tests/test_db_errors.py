"""Every bad input raises its typed error with a clear message AND changes nothing.

"Nothing" is checked on a full snapshot of every table before and after the failed call.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import pytest

from chatlab.db import errors as E
from chatlab.db.client import ChatDB
from sim.errors import ChatLabError, IllegalTransition

TABLES = ("operators", "chats", "messages", "chat_assignments", "chat_events", "schema_migrations", "topics")


def _dump(db: ChatDB) -> dict[str, list[tuple]]:
    out = {}
    for table in TABLES:
        order = {"schema_migrations": "version", "topics": "name"}.get(table, "id")
        out[table] = db._rows(f"SELECT * FROM {table} ORDER BY {order}")  # constant table names
    return out


@pytest.fixture
def world(db: ChatDB) -> dict[str, Any]:
    """A: holds `held`; B: online, free; C: offline.  `waiting`, `replied` (last op A), `done`."""
    db.set_clock(0)
    a, b = db.create_operator("a", max_chats=2), db.create_operator("b")
    c = db.create_operator("c", online=False)
    held = db.real_user_message(1, "held")
    replied = db.real_user_message(2, "replied")
    done = db.real_user_message(3, "done")
    assert db.assign_chat_to_operator(a) == held
    assert db.assign_chat_to_operator(a) == replied
    db.operator_message(a, replied, "answer")
    db.end_chat(done)
    waiting = db.real_user_message(4, "waiting")
    db.set_clock(10)
    return {"db": db, "a": a, "b": b, "c": c, "held": held, "replied": replied, "done": done,
            "waiting": waiting, "nope": 999_999}


CASES: list[tuple[str, type[E.ChatLabError], str, Callable[[dict], Any]]] = [
    # (id, error, message fragment, call)
    ("assign-unknown-operator", E.UnknownOperator, "unknown operator 999999",
     lambda w: w["db"].assign_chat_to_operator(w["nope"])),
    ("assign-null-operator", E.InvalidArgument, "operator id must not be NULL",
     lambda w: w["db"].assign_chat_to_operator(None)),
    ("assign-unknown-policy", E.UnknownPolicy, "unknown policy 'fifo'",
     lambda w: w["db"].assign_chat_to_operator(w["b"], "fifo")),
    ("assign-negative-fallback", E.InvalidArgument, "fallback_after must be >= 0",
     lambda w: w["db"].assign_chat_to_operator(w["b"], "exclude_last_fallback", -1)),
    ("assign-nan-fallback", E.InvalidArgument, "fallback_after must be >= 0",
     lambda w: w["db"].assign_chat_to_operator(w["b"], "exclude_last_fallback", math.nan)),
    ("assign-operator-id-wrong-type", E.InvalidArgument, "invalid",
     lambda w: w["db"].assign_chat_to_operator("abc")),
    ("reply-unknown-operator", E.UnknownOperator, "unknown operator",
     lambda w: w["db"].operator_message(w["nope"], w["held"], "x")),
    ("reply-unknown-chat", E.UnknownChat, "unknown chat 999999",
     lambda w: w["db"].operator_message(w["a"], w["nope"], "x")),
    ("reply-not-your-chat", E.NotYourChat, "not assigned to this operator",
     lambda w: w["db"].operator_message(w["b"], w["held"], "x")),
    ("reply-offline-operator", E.NotYourChat, "not assigned to this operator",
     lambda w: w["db"].operator_message(w["c"], w["held"], "x")),
    ("reply-to-waiting-chat", E.NotYourChat, "state waiting_assignment",
     lambda w: w["db"].operator_message(w["a"], w["waiting"], "x")),
    ("reply-twice", E.NotYourChat, "state waiting_real_user_reply",
     lambda w: w["db"].operator_message(w["a"], w["replied"], "x")),
    ("reply-completed", E.ChatCompleted, "completed",
     lambda w: w["db"].operator_message(w["a"], w["done"], "x")),
    ("reply-empty-body", E.InvalidArgument, "message body must not be empty",
     lambda w: w["db"].operator_message(w["a"], w["held"], "")),
    ("reply-blank-body", E.InvalidArgument, "message body must not be empty",
     lambda w: w["db"].operator_message(w["a"], w["held"], " \n\t ")),
    ("reply-null-body", E.InvalidArgument, "message body must not be empty",
     lambda w: w["db"].operator_message(w["a"], w["held"], None)),
    ("reply-huge-body", E.InvalidArgument, "too long: 10001 characters",
     lambda w: w["db"].operator_message(w["a"], w["held"], "x" * 10001)),
    ("unassign-not-yours", E.NotYourChat, "cannot unassign",
     lambda w: w["db"].unassign_chat(w["b"], w["held"])),
    ("unassign-replied", E.NotYourChat, "not assigned",
     lambda w: w["db"].unassign_chat(w["a"], w["replied"])),
    ("unassign-completed", E.ChatCompleted, "completed",
     lambda w: w["db"].unassign_chat(w["a"], w["done"])),
    ("user-message-completed", E.ChatCompleted, "not allowed in state 'completed'",
     lambda w: w["db"].real_user_message(3, "hello?", w["done"])),
    ("user-message-unknown-chat", E.UnknownChat, "unknown chat",
     lambda w: w["db"].real_user_message(1, "x", w["nope"])),
    ("user-message-someone-elses-chat", E.NotYourChat, "does not belong to real user 2",
     lambda w: w["db"].real_user_message(2, "x", w["held"])),
    ("user-message-empty", E.InvalidArgument, "must not be empty",
     lambda w: w["db"].real_user_message(1, "")),
    ("user-message-huge", E.InvalidArgument, "too long",
     lambda w: w["db"].real_user_message(1, "y" * 20000)),
    ("user-message-null-user", E.InvalidArgument, "real user id must not be NULL",
     lambda w: w["db"].real_user_message(None, "x")),
    ("end-completed", E.ChatCompleted, "completed",
     lambda w: w["db"].end_chat(w["done"])),
    ("end-unknown", E.UnknownChat, "unknown chat",
     lambda w: w["db"].end_chat(w["nope"])),
    ("end-empty-reason", E.InvalidArgument, "end reason must not be empty",
     lambda w: w["db"].end_chat(w["held"], "")),
    ("release-waiting-chat", E.ChatNotAssigned, "is not assigned",
     lambda w: w["db"].release_and_reassign_chat(w["waiting"])),
    ("release-replied-chat", E.ChatNotAssigned, "is not assigned",
     lambda w: w["db"].release_and_reassign_chat(w["replied"])),
    ("release-completed", E.ChatCompleted, "completed",
     lambda w: w["db"].release_and_reassign_chat(w["done"])),
    ("release-unknown", E.UnknownChat, "unknown chat",
     lambda w: w["db"].release_and_reassign_chat(w["nope"])),
    ("idle-negative", E.InvalidArgument, "idle_after_seconds must be a finite number >= 0",
     lambda w: w["db"].release_idle_operator_chats(-5)),
    ("idle-infinite", E.InvalidArgument, "finite",
     lambda w: w["db"].release_idle_operator_chats(math.inf)),
    ("stuck-negative", E.InvalidArgument, "hours must be a finite number >= 0",
     lambda w: w["db"].detect_stuck_chats(-1)),
    ("operator-zero-capacity", E.InvalidArgument, "max_chats must be at least 1",
     lambda w: w["db"].create_operator("z", max_chats=0)),
    ("operator-empty-name", E.InvalidArgument, "operator name must not be empty",
     lambda w: w["db"].create_operator("  ")),
    ("online-unknown-operator", E.UnknownOperator, "unknown operator",
     lambda w: w["db"].set_operator_online(w["nope"], True)),
    ("online-null-flag", E.InvalidArgument, "online must be true or false",
     lambda w: w["db"].set_operator_online(w["a"], None)),
    ("touch-unknown-operator", E.UnknownOperator, "unknown operator",
     lambda w: w["db"].touch_operator(w["nope"])),
    ("next-state-unknown-state", E.InvalidArgument, "unknown chat state 'open'",
     lambda w: w["db"].chat_next_state("open", "assign")),
    ("next-state-unknown-event", E.InvalidArgument, "unknown chat event 'poke'",
     lambda w: w["db"].chat_next_state("assigned", "poke")),
    ("next-state-illegal", E.IllegalTransition, "event 'operator_reply' is not allowed in state 'waiting_assignment'",
     lambda w: w["db"].chat_next_state("waiting_assignment", "operator_reply")),
    ("next-state-legacy-only", E.IllegalTransition, "only the legacy pre-fix policy",
     lambda w: w["db"].chat_next_state("waiting_real_user_reply", "assign")),
    # floors (migration 019): topics, skills, routing rules
    ("new-chat-unknown-topic", E.UnknownTopic, "unknown topic 'refunds'",
     lambda w: w["db"].real_user_message(5, "hello", None, "refunds")),
    ("new-chat-unknown-topic-empty-body", E.InvalidArgument, "message body must not be empty",
     lambda w: w["db"].real_user_message(5, "", None, "refunds")),  # the body is checked first
    ("topic-empty-name", E.InvalidArgument, "topic name must not be empty",
     lambda w: w["db"].define_topic(" ", "billing", 1)),
    ("topic-empty-skill", E.InvalidArgument, "skill must not be empty", lambda w: w["db"].define_topic("t", "", 1)),
    ("topic-negative-priority", E.InvalidArgument, "priority must be an integer from 0 to 1000",
     lambda w: w["db"].define_topic("t", "billing", -1)),
    ("topic-huge-priority", E.InvalidArgument, "priority must be an integer from 0 to 1000",
     lambda w: w["db"].define_topic("t", None, 1001)),
    ("operator-blank-skill", E.InvalidArgument, "skill must not be empty",
     lambda w: w["db"].create_operator("d", 1, True, ["billing", " "])),
    ("operator-long-skill", E.InvalidArgument, "skill is too long",
     lambda w: w["db"].create_operator("d", 1, True, ["x" * 101])),
    ("operator-null-skills", E.InvalidArgument, "skills must be a list of names",
     lambda w: w["db"].create_operator("d", 1, True, None)),
    ("assign-negative-relax", E.InvalidArgument, "relax_after must be from 0 to 1e9",
     lambda w: w["db"].assign_chat_to_operator(w["b"], "exclude_last", 300, 0, -5)),
    ("assign-negative-sla-target", E.InvalidArgument, "SLA targets must be from 0 to 1e9",
     lambda w: w["db"].assign_chat_to_operator(w["b"], "exclude_last", 300, 0, None, [60, -1])),
    # routing rules (migration 020)
    ("topic-zero-weight", E.InvalidArgument, "weight must be an integer from 1 to 100",
     lambda w: w["db"].define_topic("t", None, 0, 0)),
    ("topic-huge-weight", E.InvalidArgument, "weight must be an integer from 1 to 100",
     lambda w: w["db"].define_topic("t", None, 0, 101)),
    ("assign-negative-sticky", E.InvalidArgument, "sticky_for must be from 0 to 1e9",
     lambda w: w["db"].assign_chat_to_operator(w["b"], "exclude_last", 300, 0, None, None, -1)),
    ("assign-zero-fair-limit", E.InvalidArgument, "fair_limit must be an integer >= 1",
     lambda w: w["db"].assign_chat_to_operator(w["b"], "exclude_last", 300, 0, None, None, None, 0)),
    ("assign-negative-fair-window", E.InvalidArgument, "fair_window must be from 0 to 1e9",
     lambda w: w["db"].assign_chat_to_operator(w["b"], "exclude_last", 300, 0, None, None, None, 2, -60)),
    ("assign-unknown-variant", E.UnknownPolicy, "or a buggy variant",
     lambda w: w["db"].assign_chat_to_operator(w["b"], "oldest_last")),
    ("unlocked-unknown-operator", E.UnknownOperator, "unknown operator",
     lambda w: w["db"].assign_chat_to_operator(w["nope"], "exclude_last_unlocked")),
    ("no-answer-negative", E.InvalidArgument, "reassign_after must be a finite number of seconds >= 0",
     lambda w: w["db"].release_unanswered_chats(-1)),
    ("no-answer-infinite", E.InvalidArgument, "reassign_after must be a finite number of seconds >= 0",
     lambda w: w["db"].release_unanswered_chats(float("inf"))),
]


@pytest.mark.parametrize(("error", "fragment", "call"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_typed_error_and_changes_nothing(world, error, fragment, call):
    db = world["db"]
    before = _dump(db)
    with pytest.raises(error) as info:
        call(world)
    exc = info.value
    assert type(exc) is error  # the exact class, not just a base
    assert isinstance(exc, ChatLabError)  # the CLI prints it as one line
    assert fragment in str(exc)
    assert "\n" not in str(exc)
    if not exc.sqlstate.startswith("22"):  # 22xxx: PostgreSQL's own data errors (wrong types)
        assert exc.sqlstate == error.sqlstate
    assert _dump(db) == before


def test_at_least_twenty_bad_inputs_are_covered():
    assert len(CASES) >= 20
    covered = {c[1] for c in CASES}
    assert set(E.SQLSTATE_ERRORS.values()) <= covered


def test_illegal_transition_errors_carry_the_machine_facts(world):
    with pytest.raises(IllegalTransition) as info:  # the simulation's type catches it too
        world["db"].real_user_message(3, "again", world["done"])
    assert info.value.chat_id == world["done"]
    assert str(info.value.state) == "completed" and str(info.value.event) == "user_message"


def test_offline_or_full_operator_is_not_an_error(world):
    db = world["db"]
    before = _dump(db)
    assert db.assign_chat_to_operator(world["c"]) is None  # offline
    assert db.assign_chat_to_operator(world["a"], "legacy") is not None  # a: 1 of 2
    assert db.assign_chat_to_operator(world["a"], "legacy") is None  # now full
    assert _dump(db) != before


def test_sqlstate_table_and_race_states():
    assert set(E.SQLSTATE_ERRORS) == {"CL001", "CL002", "CL003", "CL004", "CL005", "CL006", "CL007", "CL009", "CL010"}
    for code, cls in E.SQLSTATE_ERRORS.items():
        assert cls.sqlstate == code and issubclass(cls, E.ChatLabError)
    assert E.RACE_SQLSTATES <= set(E.SQLSTATE_ERRORS)
    assert "CL001" not in E.RACE_SQLSTATES and "CL006" not in E.RACE_SQLSTATES


def test_translate_maps_unknown_codes_to_generic_errors():
    class Fake(Exception):
        sqlstate = "23505"

    assert isinstance(E.translate(Fake("dup")), E.ConstraintViolation)
    Fake.sqlstate = "XX000"
    err = E.translate(Fake("boom"))
    assert type(err) is E.DatabaseError and err.sqlstate == "XX000" and "XX000" in str(err)


def test_constraints_reject_invalid_rows_written_by_hand(world):
    """The schema's last line of defence, for writes that bypass the functions."""
    import psycopg

    db = world["db"]
    bad_writes = [
        ("UPDATE chats SET assigned_operator_id = NULL WHERE id = %s", world["held"], "23514"),
        ("UPDATE chats SET is_active = false WHERE id = %s", world["waiting"], "23514"),
        ("UPDATE chats SET chat_state = 'bogus' WHERE id = %s", world["waiting"], "CL004"),
        ("UPDATE chats SET chat_state = 'assigned', assigned_operator_id = 1 WHERE id = %s", world["replied"], "CL004"),
        ("INSERT INTO chat_assignments (chat_id, operator_id, assigned_at) VALUES (%s, 2, now())", world["held"], "23505"),
    ]
    before = _dump(db)
    for query, chat, code in bad_writes:
        with pytest.raises(psycopg.Error) as info:
            db.conn.execute(query.encode(), (chat,))
        assert info.value.sqlstate == code, query
    assert _dump(db) == before
