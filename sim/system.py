"""The chat system in memory: the reference implementation of ``docs/semantics.md``.

One class, :class:`ChatSystem`, holds operators and chats and offers exactly the operations
the PostgreSQL functions offer (``create_operator``, ``set_operator_online``,
``touch_operator``, ``real_user_message``, ``assign``, ``operator_message``,
``unassign_chat``, ``end_chat``, ``release_idle_operator_chats``, ``detect_stuck_chats``,
``release_and_reassign_chat``, ``release_unanswered_chats``; the background jobs live in
:mod:`sim.jobs`).  It is used three ways, which is why it is pure Python,
deterministic and knows nothing about SimPy:

* ``sim/model.py`` drives it from SimPy processes (the simulation);
* the differential test drives it and the SQL functions with the same calls and compares
  the resulting event logs;
* trace replay feeds it a recorded sequence of calls.

Rules that keep those three honest:

* Every chat state change goes through :func:`sim.statemachine.next_state`; an illegal
  one raises :class:`~sim.errors.IllegalTransition` (a bug in the caller, loud).
* A bad call (unknown id, somebody else's chat, completed chat, bad argument) raises a
  :class:`~sim.errors.ChatLabError` subclass — the very class the database's SQLSTATE maps to — and
  changes nothing (all checks happen before the first mutation).
* Every state change is recorded in an :class:`~sim.eventlog.EventLogBuilder`, one row
  per event, in the order the changes happened.

Time is a float in seconds.  Every operation takes ``now=``; when omitted the system's
clock (:attr:`ChatSystem.now`) is used.  The clock never goes backwards.

Event-log conventions (the SQL side must reproduce them; ``docs/semantics.md``):

=====================  ==============  =====================================  ====================
operation              event           operator_id                            reason
=====================  ==============  =====================================  ====================
real_user_message      user_message    <NA>                                   <NA>
assign                 assign          the new holder                         <NA>
operator_message       operator_reply  the holder                             <NA>
unassign_chat          unassign        the holder                             <NA>
going offline          unassign        the holder                             ``operator_offline``
idle detection         idle_release    the holder                             ``idle``
release_and_reassign   stuck_release   the holder                             the given reason
no-answer timeout      stuck_release   the holder                             ``no_answer``
end_chat               end             the holder if assigned, else <NA>      the given reason
=====================  ==============  =====================================  ====================

Operator rows (``chat_id`` <NA>): ``operator_online`` / ``operator_offline`` only when the
online flag actually changes (``operator_offline`` from idle detection has reason
``idle``); ``operator_idle`` / ``operator_active`` are ground truth that only the
simulation knows (:meth:`ChatSystem.mark_operator_idle`), they change no state.  When one
call changes several things, chat rows come first (in chat-id order), then the operator row.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

from sim.calls import Call, recorded
from sim.errors import ChatCompleted, InvalidArgument, NotYourChat, UnknownChat, UnknownOperator, UnknownTopic
from sim.eventlog import EventLogBuilder, OperatorEvent
from sim.jobs import BackgroundJobs
from sim.oprank import RankedAsks, replay
from sim.policies import KNOWN_NAMES, ChatOrderedPolicy, Policy, Snapshot, make_policy
from sim.records import (
    MAX_BODY,
    MAX_NAME,
    MAX_PRIORITY,
    MAX_WEIGHT,
    AssignmentRecord,
    Chat,
    Operator,
    TopicRow,
    check_text,
)
from sim.routing import NO_ROUTING, Routing
from sim.statemachine import Event, State, next_state

_WA, _AS, _WR, _DONE = State.WAITING_ASSIGNMENT, State.ASSIGNED, State.WAITING_REAL_USER_REPLY, State.COMPLETED
#: States a chat can be picked from by some policy (legacy includes the reply-waiting one).
_QUEUE_STATES = frozenset({_WA, _WR})
#: Built-in policies whose eligibility is limited to waiting_assignment (the seed's fix rule).
_FIX_ONLY_POLICIES = frozenset(
    type(make_policy(name)) for name in KNOWN_NAMES if not make_policy(name).legacy
)
#: Built-in policies that look only at the requesting operator (chat-ordered ones).
_REQUESTER_ONLY_POLICIES = frozenset(
    type(make_policy(name)) for name in KNOWN_NAMES if isinstance(make_policy(name), ChatOrderedPolicy)
)


# --------------------------------------------------------------------------- the system


class ChatSystem(BackgroundJobs, RankedAsks):
    """Operators, chats and the operations on them, exactly as the SQL functions define them.

    ``log`` is the :class:`EventLogBuilder` every change is recorded into (a new one by
    default).  Ids are 1, 2, 3... in creation order, like a fresh ``bigserial``.
    """

    def __init__(self, *, log: EventLogBuilder | None = None, start: float = 0.0, record_calls: bool = False) -> None:
        if not math.isfinite(start):
            raise InvalidArgument(f"start time must be a finite number of seconds, got {start!r}")
        self.now: float = float(start)
        self.log = log if log is not None else EventLogBuilder()
        self.operators: dict[int, Operator] = {}
        self.chats: dict[int, Chat] = {}
        self.history: list[AssignmentRecord] = []
        self._open_history: dict[int, AssignmentRecord] = {}
        self._queue: dict[int, Chat] = {}  # chats in waiting_assignment / waiting_real_user_reply
        # the waiting_assignment ones, kept apart so a pick looks only at them, not at every chat
        # waiting for its user too (most of the queue on a busy floor)
        self._wa: dict[int, Chat] = {}
        self._wa_special = 0  # how many of them need a skill or weigh more than 1 (sim/oprank.py)
        self._policies: dict[tuple, Policy] = {}
        self.topics: dict[str, TopicRow] = {}
        self._last_chat_of: dict[int, int] = {}  # real user -> their latest chat
        self._next_chat = 1
        self._dirty_ops: set[int] = set()  # operators whose row changed since the rank index looked
        self._rank = None  # the OperatorRank of the policy asked last (sim/oprank.py)
        #: Successful operations in order (a list when ``record_calls``), see :class:`Call`.
        self.calls: list[Call] | None = [] if record_calls else None
        self._depth = 0

    # ----------------------------------------------------------------- helpers

    def _tick(self, now: float | None) -> float:
        """Advance the clock to ``now`` (validated); return the time of this call."""
        if now is None:
            return self.now
        if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
            raise InvalidArgument(f"now must be a finite number of seconds, got {now!r}")
        if now < self.now:
            raise InvalidArgument(f"time went backwards: now={now:g} is before the clock ({self.now:g})")
        self.now = float(now)
        return self.now

    def _op(self, operator_id: int) -> Operator:
        op = self.operators.get(operator_id)
        if op is None:
            raise UnknownOperator(f"unknown operator {operator_id!r}")
        return op

    def _chat(self, chat_id: int) -> Chat:
        chat = self.chats.get(chat_id)
        if chat is None:
            raise UnknownChat(f"unknown chat {chat_id!r}")
        return chat

    def _policy(self, policy: Policy | str, fallback_after: float | None = None,
                rules: dict[str, Any] | None = None) -> Policy:
        """The policy object for an ``assign`` by name, checked in SQL's order: the name, its
        parameter, the routing rules (``rules``: :class:`sim.routing.Routing`'s fields)."""
        if isinstance(policy, Policy):
            return policy
        if policy not in KNOWN_NAMES:
            make_policy(policy)  # UnknownPolicy, naming the valid ones
        rules = rules or {}
        if rules.get("sla_targets") is not None:
            rules = {**rules, "sla_targets": tuple(float(t) for t in rules["sla_targets"])}
        key = (policy, fallback_after if policy == "exclude_last_fallback" else None, tuple(sorted(rules.items())))
        cached = self._policies.get(key)
        if cached is None:
            params = {"fallback_after": float(fallback_after)} if key[1] is not None else {}
            make_policy(policy, **params)  # a bad fallback_after before a bad routing rule, as SQL
            cached = self._policies[key] = make_policy(policy, Routing(**rules), **params)
        return cached

    def _move(self, chat: Chat, event: Event, t: float, *, operator_id: int | None,
              reason: str | None = None, legacy: bool = False) -> State:
        """Apply one state-machine transition to ``chat`` and record it (the only place states change)."""
        source = chat.state
        target = next_state(source, event, chat_id=chat.id, legacy=legacy)
        chat.state = target
        if target is _WA:
            if source is not _WA:
                self._wa[chat.id] = chat
                self._wa_special += chat.skill is not None or chat.weight != 1
        elif source is _WA:
            del self._wa[chat.id]
            self._wa_special -= chat.skill is not None or chat.weight != 1
        if target in _QUEUE_STATES:
            self._queue[chat.id] = chat
        else:
            self._queue.pop(chat.id, None)
        self.log.record(t, event, chat_id=chat.id, operator_id=operator_id,
                        from_state=source, to_state=target, reason=reason, topic=chat.topic, user_id=chat.real_user_id)
        return target

    def _release(self, chat: Chat, event: Event, t: float, *, reason: str | None, history_reason: str) -> int:
        """Take an ``assigned`` chat from its holder (reply, unassign, idle, stuck, end)."""
        holder = chat.assigned_operator_id
        assert holder is not None, f"chat {chat.id} is assigned without an operator"
        self._move(chat, event, t, operator_id=holder, reason=reason)
        op = self.operators[holder]
        op.chats.discard(chat.id)
        op.load -= chat.weight
        chat.assigned_operator_id = None
        chat.assigned_at = None
        chat.last_operator_id = holder
        rec = self._open_history.pop(chat.id)
        rec.released_at, rec.release_reason = t, history_reason
        return holder

    # ----------------------------------------------------------------- operators

    @recorded
    def create_operator(self, *, max_chats: int = 1, online: bool = False, skills: Iterable[str] = (),
                        now: float | None = None) -> int:
        """Add an operator (offline unless ``online``) with its skills; return its id.

        Checked in SQL's order: the skills, then the capacity.
        """
        if skills is None or isinstance(skills, str):
            raise InvalidArgument(f"skills must be a list of names, got {skills!r}")
        skills = tuple(skills)
        for skill in skills:
            check_text("skill", skill, MAX_NAME)
        if isinstance(max_chats, bool) or not isinstance(max_chats, int) or max_chats < 1:
            raise InvalidArgument(f"max_chats must be an integer >= 1, got {max_chats!r}")
        t = self._tick(now)
        op_id = len(self.operators) + 1
        self.operators[op_id] = op = Operator(op_id, max_chats, last_activity_at=t, skills=frozenset(skills))
        object.__setattr__(op, "_dirty", self._dirty_ops)
        self._dirty_ops.add(op_id)
        if online:
            self.set_operator_online(op_id, True, now=t)
        return op_id

    @recorded
    def define_topic(self, name: str, skill: str | None = None, priority: int = 0, weight: int = 1, *,
                     now: float | None = None) -> None:
        """Define (or redefine) a topic: new chats of it need ``skill``, have class ``priority``
        and take ``weight`` units of an operator's capacity.

        Chats opened earlier keep what they were opened with.
        """
        check_text("topic name", name, MAX_NAME)
        if skill is not None:
            check_text("skill", skill, MAX_NAME)
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
            raise InvalidArgument(f"priority must be an integer from 0 to {MAX_PRIORITY}, got {priority!r}")
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_WEIGHT:
            raise InvalidArgument(f"weight must be an integer from 1 to {MAX_WEIGHT}, got {weight!r}")
        self._tick(now)
        self.topics[name] = TopicRow(name, skill, priority, weight)

    @recorded
    def set_operator_online(self, operator_id: int, online: bool, *, now: float | None = None) -> int:
        """Log an operator in (activity) or out (its assigned chats go back to the queue).

        Returns the number of chats released (0 when going online).
        """
        op = self._op(operator_id)
        t = self._tick(now)
        if online:
            op.last_activity_at = t
            if not op.online:
                op.online = True
                self.log.record(t, OperatorEvent.ONLINE, operator_id=op.id)
            return 0
        if not op.online:
            return 0
        return self._take_offline(op, t, Event.UNASSIGN, chat_reason="operator_offline",
                                  history_reason="operator_offline", op_reason=None)

    def _take_offline(self, op: Operator, t: float, event: Event, *, chat_reason: str,
                      history_reason: str, op_reason: str | None) -> int:
        released = sorted(op.chats)
        for chat_id in released:
            self._release(self.chats[chat_id], event, t, reason=chat_reason, history_reason=history_reason)
        op.online = False
        self.log.record(t, OperatorEvent.OFFLINE, operator_id=op.id, reason=op_reason)
        return len(released)

    @recorded
    def touch_operator(self, operator_id: int, *, now: float | None = None) -> None:
        """Heartbeat: the operator is active (``last_activity_at := now``)."""
        op = self._op(operator_id)
        op.last_activity_at = self._tick(now)

    @recorded
    def mark_operator_idle(self, operator_id: int, idle: bool, *, now: float | None = None) -> None:
        """Record ground truth ``operator_idle`` / ``operator_active`` (simulation only; no state change)."""
        op = self._op(operator_id)
        t = self._tick(now)
        self.log.record(t, OperatorEvent.IDLE if idle else OperatorEvent.ACTIVE, operator_id=op.id)

    # ----------------------------------------------------------------- real users

    @recorded
    def real_user_message(self, real_user_id: int, body: str = "hello", chat_id: int | None = None, *,
                          topic: str | None = None, now: float | None = None) -> int:
        """A real user writes: a new chat (``chat_id`` None, about ``topic``) or a message in its
        existing chat (``topic`` is then ignored).

        Returns the chat id.  In ``waiting_real_user_reply`` the chat becomes assignable
        again (``waiting_since := now``); queued or assigned chats keep state and place.
        """
        if isinstance(real_user_id, bool) or not isinstance(real_user_id, int):
            raise InvalidArgument(f"real_user_id must be an integer, got {real_user_id!r}")
        check_text("message body", body, MAX_BODY)
        if chat_id is None:
            row = self.topics.get(topic) if topic is not None else TopicRow("")
            if row is None:
                raise UnknownTopic(f"unknown topic {topic!r}")
            t = self._tick(now)
            previous = self._last_chat_of.get(real_user_id)  # known agent: who handled their last chat
            chat = Chat(self._next_chat, real_user_id, _WA, waiting_since=t, created_at=t,
                        topic=topic, skill=row.skill, priority=row.priority, weight=row.weight,
                        sticky_operator_id=None if previous is None else self.chats[previous].handler)
            self._last_chat_of[real_user_id] = chat.id
            self._next_chat += 1
            self.chats[chat.id] = chat
            self._queue[chat.id] = chat
            self._wa[chat.id] = chat
            self._wa_special += chat.skill is not None or chat.weight != 1
            self.log.record(t, Event.USER_MESSAGE, chat_id=chat.id, to_state=_WA, topic=topic, user_id=real_user_id)
            return chat.id
        chat = self._chat(chat_id)
        if chat.real_user_id != real_user_id:
            raise NotYourChat(f"chat {chat_id} belongs to real user {chat.real_user_id}, not {real_user_id}")
        if chat.state is _DONE:
            raise ChatCompleted.on(chat_id, Event.USER_MESSAGE)
        t = self._tick(now)
        source = chat.state
        self._move(chat, Event.USER_MESSAGE, t, operator_id=None)
        if source is _WR:
            chat.waiting_since = t
        return chat.id

    @recorded
    def end_chat(self, chat_id: int, reason: str | None = None, *, now: float | None = None) -> None:
        """Close a chat from any open state (``resolved``, ``abandoned``...)."""
        chat = self._chat(chat_id)
        if chat.state is _DONE:
            raise ChatCompleted.on(chat_id, Event.END)
        if reason is not None and not isinstance(reason, str):
            raise InvalidArgument(f"end reason must be text, got {reason!r}")
        t = self._tick(now)
        if chat.state is _AS:
            self._release(chat, Event.END, t, reason=reason, history_reason="end")
        else:
            self._move(chat, Event.END, t, operator_id=None, reason=reason)
        chat.is_active = False

    # ----------------------------------------------------------------- operators at work

    def snapshot(self, now: float | None = None, salt: int = 0, *, queue_only: bool = False,
                 waiting_only: bool = False, requester: Operator | None = None,
                 routing: Routing = NO_ROUTING) -> Snapshot:
        """What a policy sees: open chats (id order) and all operators (id order).

        ``queue_only`` leaves out ``assigned`` chats, which no policy can pick, and
        ``waiting_only`` also the chats waiting for their user, which only ``legacy`` can
        pick; ``requester`` lists only that operator (enough for chat-ordered policies).  The
        answer of the policies concerned is the same either way, just cheaper.  With a
        fair-distribution limit in ``routing`` the operators' recent assignments are counted.
        """
        t = self.now if now is None else float(now)
        chats: Iterable[Chat]
        if waiting_only:
            chats = self._wa.values()
        elif queue_only:
            chats = self._queue.values()
        else:
            chats = (c for c in self.chats.values() if c.state is not _DONE)
        return Snapshot(
            now=t,
            chats=tuple(sorted((c.view() for c in chats), key=lambda v: v.chat_id)),
            operators=tuple(op.view(op.recent_assignments(t, routing.fair_window) if routing.fair_limit else 0)
                            for op in ((requester,) if requester is not None else self.operators.values())),
            salt=int(salt),
        )

    @recorded
    def assign(self, operator_id: int, policy: Policy | str, *, now: float | None = None,
               salt: int = 0, fallback_after: float | None = None, relax_after: float | None = None,
               sla_targets: Iterable[float] | None = None, sticky_for: float | None = None,
               fair_limit: int | None = None, fair_window: float | None = 3600.0) -> int | None:
        """The operator asks for a chat; the policy picks one (or None).

        ``policy`` is a :class:`Policy` (with its routing rules) or a name; with a name,
        ``fallback_after`` sets ``exclude_last_fallback``'s T, and the other keywords the
        routing rules (:class:`sim.routing.Routing`), as the SQL function's parameters do.
        Offline, full or over-limit operators get None (not an error).  Asking is not activity.
        """
        pol = self._policy(policy, fallback_after, {
            "relax_after": relax_after, "sla_targets": sla_targets, "sticky_for": sticky_for,
            "fair_limit": fair_limit, "fair_window": 3600.0 if fair_window is None else fair_window})
        op = self._op(operator_id)
        t = self._tick(now)
        if not op.has_capacity or not self._queue:
            return None
        # The built-in fix policies only ever pick waiting_assignment chats, so they are shown
        # only those (same answer, less work).  Any other policy sees the whole queue, so a
        # wrong pick still ends in a loud IllegalTransition below.
        # Likewise a built-in chat-ordered policy only looks at the requester among the operators.
        fix_only = type(pol) in _FIX_ONLY_POLICIES
        if fix_only and not self._wa:
            return None
        # Operator-ordered built-ins without routing rules: the matching is played from the rank
        # index over the operators ahead only (sim/oprank.py), not over a snapshot of the floor.
        chat_id: int | None
        rank = self._rank_index(pol)
        if rank is not None:
            ahead, waiting = rank.ahead(op), self._wa
            if ahead >= 2 * len(waiting):
                return None
            queue = sorted(waiting.values(), key=lambda c: (-c.priority, c.waiting_since, c.id))
            chat_id = replay(rank.first(ahead), op.id, queue)
        else:
            # known-agent reservations depend on other operators' state: then the policy sees them all
            requester_only = type(pol) in _REQUESTER_ONLY_POLICIES and pol.routing.sticky_for is None
            snap = self.snapshot(t, salt, queue_only=True, waiting_only=fix_only,
                                 requester=op if requester_only else None, routing=pol.routing)
            chat_id = pol.pick(snap, operator_id)
        if chat_id is None:
            return None
        chat = self.chats[chat_id]
        self._move(chat, Event.ASSIGN, t, operator_id=op.id, legacy=pol.legacy)
        chat.assigned_operator_id = op.id
        chat.assigned_at = t
        op.chats.add(chat.id)
        op.load += chat.weight
        op.assigned_times.append(t)
        op.last_assigned_at = t
        rec = AssignmentRecord(chat.id, op.id, t)
        self.history.append(rec)
        self._open_history[chat.id] = rec
        return chat.id

    def _held(self, operator_id: int, chat_id: int, event: Event) -> tuple[Operator, Chat]:
        op = self._op(operator_id)
        chat = self._chat(chat_id)
        if chat.state is _DONE:
            raise ChatCompleted.on(chat_id, event)
        if chat.state is not _AS or chat.assigned_operator_id != operator_id:
            holder = "nobody" if chat.assigned_operator_id is None else f"operator {chat.assigned_operator_id}"
            raise NotYourChat(f"chat {chat_id} is not assigned to operator {operator_id} "
                              f"(state {chat.state}, held by {holder})")
        return op, chat

    @recorded
    def operator_message(self, operator_id: int, chat_id: int, body: str = "answer", *, now: float | None = None) -> None:
        """The assigned operator replies: the chat waits for the real user and leaves the operator."""
        check_text("message body", body, MAX_BODY)
        op, chat = self._held(operator_id, chat_id, Event.OPERATOR_REPLY)
        t = self._tick(now)
        self._release(chat, Event.OPERATOR_REPLY, t, reason=None, history_reason="operator_reply")
        chat.operator_replied_at = t
        op.last_activity_at = t

    @recorded
    def unassign_chat(self, operator_id: int, chat_id: int, *, now: float | None = None) -> None:
        """The assigned operator hands the chat back to the queue (keeps its place: waiting_since)."""
        op, chat = self._held(operator_id, chat_id, Event.UNASSIGN)
        t = self._tick(now)
        self._release(chat, Event.UNASSIGN, t, reason=None, history_reason="unassign")
        op.last_activity_at = t

    # ----------------------------------------------------------------- read-only queries

    def state_of(self, chat_id: int) -> State:
        return self._chat(chat_id).state

    def holder_of(self, chat_id: int) -> int | None:
        """The operator the chat is assigned to, or None."""
        return self._chat(chat_id).assigned_operator_id

    def chats_of(self, operator_id: int) -> frozenset[int]:
        """Chat ids currently assigned to the operator."""
        return frozenset(self._op(operator_id).chats)

    def is_online(self, operator_id: int) -> bool:
        return self._op(operator_id).online

    def has_capacity(self, operator_id: int) -> bool:
        return self._op(operator_id).has_capacity

    def queue_length(self) -> int:
        """Chats in ``waiting_assignment``."""
        return len(self._wa)

    def queue_open(self, policy: Policy) -> bool:
        """False when :meth:`assign` with ``policy`` must return None for every operator because
        nothing is in the queue it could pick from (the model's pollers sleep then)."""
        if not self._queue:
            return False
        return bool(self._wa) or type(policy) not in _FIX_ONLY_POLICIES

    def has_waiting(self) -> bool:
        """True when some chat is in a state some policy could assign from."""
        return bool(self._queue)

    def open_chats(self) -> Iterator[Chat]:
        return (c for c in self.chats.values() if c.state is not _DONE)

