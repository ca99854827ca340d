"""Model-based differential test: Hypothesis drives random operation sequences through BOTH
``sim.system.ChatSystem`` (the reference) and the SQL functions on a fresh schema, and after
every step demands the same return value, the same error kind and the identical full state.

Why stateful: the example-based agreement tests check chosen states; here Hypothesis picks the
sequence (incl. calls that must fail, completed chats, clock jumps, idle and stuck releases)
and shrinks any disagreement to a minimal reproduction.  Two machines: the six fix-family
policies mixed in one run, and ``legacy`` alone (it reaches states the fix never creates).
"""

from __future__ import annotations

import itertools
import os
import uuid
from typing import Any, Callable, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sim.policies import KNOWN_NAMES
from sim.errors import ChatLabError

PG_URI: str | None = None  # set by the autouse fixture: the session server's URI

FIX_POLICIES = tuple(p for p in KNOWN_NAMES if p != "legacy")  # the buggy variants too
#: CHATLAB_DIFF_EXAMPLES / CHATLAB_DIFF_STEPS raise the example count / sequence length for a
#: longer bug hunt (CI keeps the defaults).
SETTINGS = settings(deadline=None, max_examples=int(os.environ.get("CHATLAB_DIFF_EXAMPLES", "50")),
                    stateful_step_count=int(os.environ.get("CHATLAB_DIFF_STEPS", "30")),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
STEPS = {"run": 0}  # steps executed over the whole module (reported by the last test)


@pytest.fixture(autouse=True, scope="module")
def _server(pg_uri: str) -> None:
    global PG_URI
    PG_URI = pg_uri


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    """('ok', value) or ('error', the exception's class): both sides raise sim.errors classes."""
    try:
        return ("ok", fn())
    except ChatLabError as exc:
        return ("error", type(exc))


def _log_rows(frame: Any) -> list[tuple]:
    import pandas as pd

    return [tuple(None if pd.isna(v) else (v if isinstance(v, (int, float)) else str(v)) for v in row)
            for row in frame.itertuples(index=False)]


ids = st.integers(min_value=0, max_value=10_000)  # turned into an existing id or one past the end
#: message bodies: mostly fine, sometimes empty, blank or one character too long (CL006 on both sides)
bodies = st.sampled_from(["hi", "hi", "hi", "", " \n\t", "x" * 10_001])
#: floors: skills of new operators, topics of new chats (one unknown: CL010), topic definitions
#: (some invalid: CL006), routing rules of an assign (relaxation, SLA targets per class, known
#: agent window, fair limit and window; some invalid)
skill_sets = st.sampled_from([[], [], ["billing"], ["tech"], ["billing", "tech"], [""]])
topics = st.sampled_from([None, None, "general", "billing", "tech", "vip", "video", "nope"])
topic_defs = st.sampled_from([("general", None, 0, 1), ("billing", "billing", 0, 1), ("tech", "tech", 1, 1),
                              ("vip", None, 2, 1), ("vip", "tech", 2, 2), ("video", None, 0, 2), ("video", None, 1, 3),
                              ("bad", "", 0, 1), ("bad", None, -1, 1), (" ", None, 0, 1), ("bad", None, 0, 0),
                              ("bad", None, 0, 101)])
relaxations = st.sampled_from([None, None, 0.0, 60.0, -1.0])
sla_targets = st.sampled_from([None, None, [300.0, 60.0, 0.0], [30.0, 0.0], [-5.0]])
sticky_windows = st.sampled_from([None, None, 0.0, 60.0, 1e6, -1.0])
fair_limits = st.sampled_from([None, None, 1, 2, 0])
fair_windows = st.sampled_from([60.0, 3600.0, 3600.0, -1.0])


class DifferentialMachine(RuleBasedStateMachine):
    """One ChatSystem and one fresh schema, driven in lock-step."""

    POLICIES: ClassVar[tuple[str, ...]] = FIX_POLICIES

    def __init__(self) -> None:
        super().__init__()
        from chatlab.db.client import ChatDB
        from chatlab.db.migrate import migrate
        from sim.system import ChatSystem

        assert PG_URI is not None
        self.schema = f"diff_{uuid.uuid4().hex[:12]}"
        migrate(PG_URI, self.schema)
        self.db = ChatDB(PG_URI, self.schema, application_name="chatlab-differential")
        self.sim = ChatSystem()
        self.t = 0.0
        self.db.set_clock(self.t)
        self.users = itertools.count(1)
        self.trace: list[str] = []

    def teardown(self) -> None:
        """The whole event log must match too (one comparison per example: it is the costly one)."""
        from chatlab.db.migrate import drop_schema

        try:
            assert _log_rows(self.sim.log.to_frame()) == _log_rows(self.db.events()), \
                "event logs differ\n" + "\n".join(self.trace)
        finally:
            self.db.close()
            drop_schema(PG_URI, self.schema)

    # -- helpers -----------------------------------------------------------------------
    def _op(self, k: int) -> int:
        """An existing operator id, or (1 in n+1) an unknown one."""
        return 1 + k % (len(self.sim.operators) + 1)

    def _chat(self, k: int) -> int:
        return 1 + k % (len(self.sim.chats) + 1)

    def _both(self, what: str, on_sim: Callable[[], Any], on_db: Callable[[], Any]) -> Any:
        STEPS["run"] += 1
        self.trace.append(f"t={self.t}: {what}")
        mine, theirs = outcome(on_sim), outcome(on_db)
        assert mine == theirs, f"{what}: ChatSystem -> {mine}, SQL -> {theirs}\n" + "\n".join(self.trace)
        return mine

    # -- rules -------------------------------------------------------------------------
    @initialize(caps=st.lists(st.integers(1, 2), min_size=1, max_size=3), chats=st.integers(1, 3))
    def start(self, caps: list[int], chats: int) -> None:
        """Online operators and waiting chats first, so 30 steps reach contested decisions
        (the rules below still create, log out and break things at random)."""
        for cap in caps:
            self.create_operator(cap, True)
        for _ in range(chats):
            self.new_chat()

    @rule(max_chats=st.integers(0, 3), online=st.booleans(), skills=skill_sets)
    def create_operator(self, max_chats: int, online: bool, skills: list[str] | None = None) -> None:
        n, skills = len(self.sim.operators) + 1, skills or []
        self._both(f"create_operator(max_chats={max_chats}, online={online}, skills={skills})",
                   lambda: self.sim.create_operator(max_chats=max_chats, online=online, skills=skills, now=self.t),
                   lambda: self.db.create_operator(f"o{n}", max_chats, online, skills))

    @rule(definition=topic_defs)
    def define_topic(self, definition: tuple[str, str | None, int, int]) -> None:
        name, skill, priority, weight = definition
        self._both(f"define_topic({name!r}, {skill!r}, {priority}, {weight})",
                   lambda: self.sim.define_topic(name, skill, priority, weight, now=self.t),
                   lambda: self.db.define_topic(name, skill, priority, weight))

    @rule(k=ids, online=st.booleans())
    def set_online(self, k: int, online: bool) -> None:
        op = self._op(k)
        self._both(f"set_operator_online({op}, {online})",
                   lambda: self.sim.set_operator_online(op, online, now=self.t),
                   lambda: self.db.set_operator_online(op, online))

    @rule(k=ids)
    def touch(self, k: int) -> None:
        op = self._op(k)
        self._both(f"touch_operator({op})", lambda: self.sim.touch_operator(op, now=self.t),
                   lambda: self.db.touch_operator(op))

    @rule(body=bodies, topic=topics, returning=ids)
    def new_chat(self, body: str = "hi", topic: str | None = None, returning: int = 0) -> None:
        """A new user, or (half the time) one who has chatted before: a known agent."""
        owners = sorted({c.real_user_id for c in self.sim.chats.values()})
        user = owners[returning % len(owners)] if owners and returning % 2 else next(self.users)
        self._both(f"real_user_message({user}, new, {body[:8]!r}, topic={topic!r})",
                   lambda: self.sim.real_user_message(user, body, topic=topic, now=self.t),
                   lambda: self.db.real_user_message(user, body, None, topic))

    @rule(k=ids, wrong_user=st.booleans(), body=bodies)
    def user_message(self, k: int, wrong_user: bool, body: str) -> None:
        chat = self._chat(k)
        owner = self.sim.chats[chat].real_user_id if chat in self.sim.chats else 1
        user = owner + 1_000_000 if wrong_user else owner
        self._both(f"real_user_message({user}, chat={chat}, {body[:8]!r})",
                   lambda: self.sim.real_user_message(user, body, chat, now=self.t),
                   lambda: self.db.real_user_message(user, body, chat))

    @rule(k=ids, data=st.data(), salt=st.integers(0, 2**31 - 1), fallback=st.sampled_from([0.0, 30.0, 300.0]),
          relax=relaxations, sla=sla_targets, sticky=sticky_windows, limit=fair_limits, window=fair_windows)
    def assign(self, k: int, data: st.DataObject, salt: int, fallback: float, relax: float | None,
               sla: list[float] | None, sticky: float | None, limit: int | None, window: float) -> None:
        op = self._op(k)
        policy = data.draw(st.sampled_from(self.POLICIES), label="policy")
        self._both(f"assign({op}, {policy}, fallback={fallback}, salt={salt}, relax={relax}, sla={sla}, "
                   f"sticky_for={sticky}, fair_limit={limit}, fair_window={window})",
                   lambda: self.sim.assign(op, policy, now=self.t, salt=salt, fallback_after=fallback,
                                           relax_after=relax, sla_targets=sla, sticky_for=sticky,
                                           fair_limit=limit, fair_window=window),
                   lambda: self.db.assign_chat_to_operator(op, policy, fallback, salt, relax, sla, sticky, limit, window))

    @rule(k=ids, c=ids, holder=st.booleans(), body=bodies)
    def reply(self, k: int, c: int, holder: bool, body: str) -> None:
        chat = self._chat(c)
        held = self.sim.chats[chat].assigned_operator_id if chat in self.sim.chats else None
        op = held if holder and held is not None else self._op(k)
        self._both(f"operator_message({op}, {chat}, {body[:8]!r})",
                   lambda: self.sim.operator_message(op, chat, body, now=self.t),
                   lambda: self.db.operator_message(op, chat, body) and None)

    @rule(k=ids, c=ids, holder=st.booleans())
    def unassign(self, k: int, c: int, holder: bool) -> None:
        chat = self._chat(c)
        held = self.sim.chats[chat].assigned_operator_id if chat in self.sim.chats else None
        op = held if holder and held is not None else self._op(k)
        self._both(f"unassign_chat({op}, {chat})", lambda: self.sim.unassign_chat(op, chat, now=self.t),
                   lambda: self.db.unassign_chat(op, chat))

    @rule(idle_after=st.sampled_from([0.0, 30.0, 120.0, -1.0]))
    def idle_release(self, idle_after: float) -> None:
        self._both(f"release_idle_operator_chats({idle_after})",
                   lambda: self.sim.release_idle_operator_chats(idle_after, now=self.t),
                   lambda: self.db.release_idle_operator_chats(idle_after))

    @rule(after=st.sampled_from([0.0, 30.0, 120.0, -1.0]))
    def no_answer_release(self, after: float) -> None:
        self._both(f"release_unanswered_chats({after})",
                   lambda: self.sim.release_unanswered_chats(after, now=self.t),
                   lambda: self.db.release_unanswered_chats(after))

    @rule(older_than=st.sampled_from([0.0, 36.0, 3600.0]))
    def detect_stuck(self, older_than: float) -> None:
        self._both(f"detect_stuck_chats({older_than} s)",
                   lambda: self.sim.detect_stuck_chats(older_than, now=self.t),
                   lambda: [s.chat_id for s in self.db.detect_stuck_chats(older_than / 3600.0)])

    @rule(c=ids, reason=st.sampled_from(["stuck_timeout", "manual_fix", ""]))
    def stuck_release(self, c: int, reason: str) -> None:
        chat = self._chat(c)
        self._both(f"release_and_reassign_chat({chat}, {reason!r})",
                   lambda: self.sim.release_and_reassign_chat(chat, reason, now=self.t),
                   lambda: self.db.release_and_reassign_chat(chat, reason))

    @rule(c=ids, reason=st.sampled_from(["resolved", "abandoned"]))
    def end(self, c: int, reason: str) -> None:
        chat = self._chat(c)
        self._both(f"end_chat({chat}, {reason})", lambda: self.sim.end_chat(chat, reason, now=self.t),
                   lambda: self.db.end_chat(chat, reason))

    @rule(dt=st.sampled_from([0.5, 1.0, 10.0, 45.0, 400.0, 4000.0]))
    def advance_clock(self, dt: float) -> None:
        self.t += dt
        self.trace.append(f"clock -> {self.t}")
        self.db.set_clock(self.t)

    # -- the full state, after every step ------------------------------------------------
    @invariant()
    def same_state(self) -> None:
        from chatlab.db.client import to_seconds

        db_chats = {
            r["id"]: (r["chat_state"], r["assigned_operator_id"], r["last_operator_id"], to_seconds(r["waiting_since"]),
                      r["is_active"], r["weight"], r["sticky_operator_id"])
            for r in self.db.chats()
        }
        sim_chats = {
            c.id: (c.state.value, c.assigned_operator_id, c.last_operator_id, c.waiting_since,
                   c.state.value != "completed", c.weight, c.sticky_operator_id)
            for c in self.sim.chats.values()
        }
        assert db_chats == sim_chats, "chats differ\n" + "\n".join(self.trace)
        active = dict(self.db._rows(  # capacity in use: the weights of the chats held
            "SELECT assigned_operator_id, sum(weight) FROM chats WHERE chat_state = 'assigned' GROUP BY 1"))
        db_ops = {
            r["id"]: (r["is_online"], active.get(r["id"], 0), to_seconds(r["last_assigned_at"]),
                      to_seconds(r["last_activity_at"]))
            for r in self.db.operators()
        }
        sim_ops = {
            o.id: (o.online, o.active_chats, o.last_assigned_at, o.last_activity_at)
            for o in self.sim.operators.values()
        }
        assert db_ops == sim_ops, "operators differ\n" + "\n".join(self.trace)


class LegacyMachine(DifferentialMachine):
    """``legacy`` only: it may assign a chat waiting for its user, which the fix never does."""

    POLICIES = ("legacy",)


TestFixPolicies = DifferentialMachine.TestCase
TestFixPolicies.settings = SETTINGS
TestLegacy = LegacyMachine.TestCase
TestLegacy.settings = SETTINGS


@pytest.mark.parametrize("completed", [False, True])
def test_empty_reason_on_unknown_or_completed_chat(db, completed) -> None:
    """Found by the machine: release_and_reassign_chat(<unknown chat>, '').

    SQL validated the reason before the chat (InvalidArgument), ChatSystem the chat first
    (UnknownChat / ChatCompleted); ChatSystem now checks arguments first, as SQL does.
    """
    from sim.system import ChatSystem

    sim = ChatSystem()
    db.set_clock(0.0)
    chat = 1
    if completed:
        assert sim.real_user_message(1, "hi", now=0.0) == db.real_user_message(1, "hi") == chat
        sim.end_chat(chat, "resolved", now=0.0)
        db.end_chat(chat, "resolved")
    assert outcome(lambda: sim.release_and_reassign_chat(chat, "", now=0.0)) == outcome(
        lambda: db.release_and_reassign_chat(chat, ""))


def test_zz_steps_were_run() -> None:
    """Guards against a silently empty run (e.g. every example rejected); prints the count."""
    print(f"differential steps run: {STEPS['run']}")
    assert STEPS["run"] > 0
