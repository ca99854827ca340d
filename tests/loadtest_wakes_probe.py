"""A :class:`loadtest.wakes.Wakes` without a database session, recording which events fire (for the tests)."""

from __future__ import annotations

from loadtest.wakes import Wakes


class _Flag:
    def __init__(self, fired: list, what: tuple) -> None:
        self.fired, self.what = fired, what

    def set(self) -> None:
        self.fired.append(self.what)


class Recorder(Wakes):
    """Wakes' delivery rules, with flags for operators 1..10 and chats 1..10."""

    def __init__(self, schema: str) -> None:  # no listener session: only deliver() is exercised
        self.schema, self.prefix, self.received = schema, f"{schema}:", 0
        self.fired: list[tuple[str, int]] = []
        self.operators = {op: [_Flag(self.fired, ("worker", op)), _Flag(self.fired, ("poller", op))]
                          for op in range(1, 11)}
        self.chats = {chat: _Flag(self.fired, ("chat", chat)) for chat in range(1, 11)}
