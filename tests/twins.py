"""``Both``: one world built in ``sim.system.ChatSystem`` and on the real SQL functions in
lock-step, every answer compared (the pinned routing cases of ``test_floor_routing.py`` and
``test_routing_rules.py``; the random agreement tests cover the space, these pin the rules).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.system import ChatSystem

#: (name, skill, priority class, weight)
TOPICS = (("billing", "billing", 0, 1), ("tech", "tech", 0, 1), ("vip", None, 1, 1), ("vip_tech", "tech", 1, 1),
          ("video", None, 0, 2))


class Both:
    """One world, two implementations, driven in lock-step; every call must agree."""

    def __init__(self, db: Any) -> None:
        self.db, self.sim, self.t = db, ChatSystem(), 0.0
        db.set_clock(0.0)
        for name, skill, priority, weight in TOPICS:
            self.sim.define_topic(name, skill, priority, weight, now=0.0)
            db.define_topic(name, skill, priority, weight)

    def at(self, t: float) -> Both:
        self.t = t
        self.db.set_clock(t)
        return self

    def both(self, on_sim: Callable[[ChatSystem], Any], on_db: Callable[[Any], Any]) -> Any:
        mine, theirs = on_sim(self.sim), on_db(self.db)
        assert mine == theirs
        return mine

    def operator(self, skills: tuple[str, ...] = (), max_chats: int = 1) -> int:
        return self.both(lambda s: s.create_operator(max_chats=max_chats, online=True, skills=skills, now=self.t),
                         lambda d: d.create_operator("op", max_chats, True, list(skills)))

    def chat(self, user: int, topic: str | None = None) -> int:
        return self.both(lambda s: s.real_user_message(user, "hello", topic=topic, now=self.t),
                         lambda d: d.real_user_message(user, "hello", None, topic))

    def assign(self, op: int, policy: str = "exclude_last", *, relax: float | None = None,
               sla: list[float] | None = None, **rules: Any) -> int | None:
        """``rules``: ``sticky_for``, ``fair_limit``, ``fair_window`` (sim.routing.Routing)."""
        return self.both(lambda s: s.assign(op, policy, now=self.t, relax_after=relax, sla_targets=sla, **rules),
                         lambda d: d.assign_chat_to_operator(op, policy, 300.0, 0, relax, sla, **rules))

    def reply(self, op: int, chat: int) -> None:
        self.both(lambda s: s.operator_message(op, chat, "answer", now=self.t),
                  lambda d: d.operator_message(op, chat, "answer") and None)  # the message id

    def end(self, chat: int) -> None:
        self.both(lambda s: s.end_chat(chat, "resolved", now=self.t), lambda d: d.end_chat(chat, "resolved"))

    def online(self, op: int, online: bool) -> int:
        return self.both(lambda s: s.set_operator_online(op, online, now=self.t),
                         lambda d: d.set_operator_online(op, online))

    def no_answer(self, after: float) -> int:
        return self.both(lambda s: s.release_unanswered_chats(after, now=self.t),
                         lambda d: d.release_unanswered_chats(after))

    def logs_agree(self) -> None:
        """The same event log on both sides (times, chats, operators, events, states, reasons)."""
        import pandas as pd

        def rows(frame: Any) -> list[tuple]:
            return [tuple(None if pd.isna(v) else (v if isinstance(v, (int, float)) else str(v)) for v in row)
                    for row in frame.itertuples(index=False)]

        assert rows(self.sim.log.to_frame()) == rows(self.db.events())
