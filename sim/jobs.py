"""The background jobs of the chat system: idle-operator release, stuck-chat detection and
release, and the no-answer timeout.

Why a module of their own: they are the seed's housekeeping (and the lab's no-answer
timeout), run by a scheduler rather than by a user or an operator, and each has its SQL twin
(``release_idle_operator_chats``, ``detect_stuck_chats``, ``release_and_reassign_chat``,
``release_unanswered_chats``).  :class:`BackgroundJobs` is mixed into
:class:`sim.system.ChatSystem`, whose state they change through its ``_release`` and
``_take_offline`` like every other operation.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sim.calls import recorded
from sim.errors import ChatCompleted, ChatNotAssigned, InvalidArgument
from sim.records import check_text
from sim.statemachine import Event, State

if TYPE_CHECKING:
    from sim.records import AssignmentRecord, Chat, Operator

#: The reason a no-answer release records (event ``stuck_release``): the holder did not reply in time.
NO_ANSWER = "no_answer"


def _check_seconds(what: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value >= 0) \
            or not math.isfinite(value):
        raise InvalidArgument(f"{what} must be a finite number of seconds >= 0, got {value!r}")


class BackgroundJobs:
    """The jobs, as methods of :class:`sim.system.ChatSystem` (this class holds no state)."""

    if TYPE_CHECKING:  # what the jobs use of the system
        operators: dict[int, Operator]
        _open_history: dict[int, AssignmentRecord]
        calls: list | None
        _depth: int
        now: float

        def _tick(self, now: float | None) -> float: ...
        def _chat(self, chat_id: int) -> Chat: ...
        def _release(self, chat: Chat, event: Event, t: float, *, reason: str | None, history_reason: str) -> int: ...
        def _take_offline(self, op: Operator, t: float, event: Event, *, chat_reason: str,
                          history_reason: str, op_reason: str | None) -> int: ...

    @recorded
    def release_idle_operator_chats(self, idle_after: float, *, now: float | None = None) -> int:
        """Idle detection: online operators inactive for ``idle_after`` s go offline, their chats back to the queue.

        Only ``assigned`` chats are touched (never one waiting for the real user).
        Returns the number of chats released.
        """
        _check_seconds("idle_after", idle_after)
        t = self._tick(now)
        cutoff = t - idle_after
        released = 0
        for op in list(self.operators.values()):
            if op.online and op.last_activity_at is not None and op.last_activity_at <= cutoff:
                released += self._take_offline(op, t, Event.IDLE_RELEASE, chat_reason="idle",
                                               history_reason="idle", op_reason="idle")
        return released

    @recorded
    def detect_stuck_chats(self, older_than: float, *, now: float | None = None) -> list[int]:
        """Chats ``assigned`` for longer than ``older_than`` seconds (oldest assignment first)."""
        _check_seconds("stuck threshold", older_than)
        t = self._tick(now)
        cutoff = t - older_than
        stuck = [(rec.assigned_at, cid) for cid, rec in self._open_history.items() if rec.assigned_at < cutoff]
        return [cid for _, cid in sorted(stuck)]

    @recorded
    def release_and_reassign_chat(self, chat_id: int, reason: str = "manual_fix", *, now: float | None = None) -> int:
        """Take an ``assigned`` chat from its holder and put it back in the queue; return the holder's id."""
        # arguments before the chat, in the same order as SQL's _chatlab_check_text (found by
        # the differential test: an empty reason on an unknown chat must be InvalidArgument)
        check_text("release reason", reason, 200)
        chat = self._chat(chat_id)
        if chat.state is State.COMPLETED:
            raise ChatCompleted.on(chat_id, Event.STUCK_RELEASE)
        if chat.state is not State.ASSIGNED:  # as SQL: CL009, nothing to release
            raise ChatNotAssigned(f"chat {chat_id} is not assigned (state {chat.state}): nothing to release",
                                  detail={"chat_id": chat_id, "state": chat.state.value, "event": "stuck_release"})
        t = self._tick(now)
        return self._release(chat, Event.STUCK_RELEASE, t, reason=reason, history_reason=reason)

    @recorded
    def release_unanswered_chats(self, after: float, *, now: float | None = None) -> int:
        """No-answer timeout: every chat ``assigned`` for ``after`` seconds or more without a reply
        goes back to the queue (event ``stuck_release``, reason ``no_answer``), keeping its place.

        The holder becomes the chat's ``last_operator_id``, so the fix's exclusion keeps the chat
        away from it (Rocket.Chat's ignored agent); ``legacy`` has no exclusion and may give it
        back.  Chats are released in the order they were assigned (then id).  Returns how many.
        """
        _check_seconds("reassign_after", after)
        t = self._tick(now)
        cutoff = t - after
        due = sorted((rec.assigned_at, cid) for cid, rec in self._open_history.items() if rec.assigned_at <= cutoff)
        for _, chat_id in due:
            self._release(self._chat(chat_id), Event.STUCK_RELEASE, t, reason=NO_ANSWER, history_reason=NO_ANSWER)
        return len(due)
