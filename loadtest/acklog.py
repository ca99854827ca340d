"""What the database acknowledged to the Locust users, line by line, for durability tests.

Why: "nothing acknowledged is lost" after a crash of the server can only be checked
against a record the *clients* kept of what they were told had committed.  With
``$CHATLAB_LOADTEST_ACKLOG=FILE`` (tests, or an operator's own crash drill) every Locust
process appends one JSON line per acknowledged write, flushed at once, so the record
survives whatever happens to the server or to Locust:

* ``{"ack": "chat", "chat": id}`` — a chat opened (``real_user_message`` returned its id);
* ``{"ack": "user_message", "chat": id}`` — a user wrote again in it;
* ``{"ack": "reply", "chat": id, "message": id}`` — an operator's answer (its message id);
* ``{"ack": "end", "chat": id}`` — the user ended it.

Unset (the default) nothing is written and the calls cost a dictionary lookup.
"""

from __future__ import annotations

import json
import os
from typing import Any

ACKLOG_ENV = "CHATLAB_LOADTEST_ACKLOG"

_FILE: dict[str, Any] = {}


def ack(kind: str, **ids: int) -> None:
    """Record that the database acknowledged one write (no-op unless ``$CHATLAB_LOADTEST_ACKLOG``)."""
    path = os.environ.get(ACKLOG_ENV)
    if not path:
        return
    fh = _FILE.get(path)
    if fh is None:
        fh = _FILE[path] = open(path, "a", buffering=1)  # noqa: SIM115 - one per process, line-buffered
    fh.write(json.dumps({"ack": kind, **ids}) + "\n")


def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every acknowledgement in the file (a torn last line, from a killed process, is skipped)."""
    out = []
    with open(path) as fh:
        for line in fh:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def lost(acks: list[dict[str, Any]], *, chats: dict[int, bool], replies: set[tuple[int, int]],
         user_messages: dict[int, int]) -> list[dict[str, Any]]:
    """The acknowledgements the stored history does not bear out (empty: nothing acknowledged is lost).

    ``chats``: id -> is_active; ``replies``: (chat id, message id) of operator messages;
    ``user_messages``: chat id -> number of the user's messages.  A chat's first message
    comes with its ``chat`` acknowledgement, so a chat must hold at least as many user
    messages as ``chat`` + ``user_message`` acknowledgements name it.
    """
    out = [a for a in acks if a["ack"] == "chat" and a["chat"] not in chats]
    out += [a for a in acks if a["ack"] == "reply" and (a["chat"], a["message"]) not in replies]
    out += [a for a in acks if a["ack"] == "end" and chats.get(a["chat"]) is not False]
    written: dict[int, int] = {}
    for a in acks:
        if a["ack"] in ("chat", "user_message"):
            written[a["chat"]] = written.get(a["chat"], 0) + 1
    out += [{"ack": "user_message", "chat": c, "acknowledged": n, "stored": user_messages.get(c, 0)}
            for c, n in written.items() if user_messages.get(c, 0) < n]
    return out
