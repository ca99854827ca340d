"""What a history says about its users and operators, read off the event log (one format for any source).

Definitions (the model's, ``sim/model.py``, read backwards):

* **think time**: an ``operator_reply`` to the chat's next ``user_message``.
* **handle time**: an operator answers its held chats one at a time, oldest message first;
  its effort on a reply (or hand-back) starts when both the work was there (the hold began
  and the user's message had arrived) and the operator had finished its previous reply or
  hand-back.  With one chat at a time this is simply assign -> reply.
* **exchanges**: operator replies in a chat that ended ``resolved`` (an abandoned chat says
  only "at least", and is left out).
* **patience**: a wait that ended with the chat closed in the queue is a patience
  (uncensored); a served wait says the patience was longer (right-censored).
* **unassign / idle probability**: per handled message, as the model draws them.
* **returning**: a new chat whose real user had a chat before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from chatlab.metrics import wait_episodes

_WORK_DONE = ("operator_reply", "unassign")


@dataclass(frozen=True)
class Samples:
    """Raw observations for the fits, per operator where it matters."""

    arrivals: np.ndarray  # chat opening times (s)
    think: np.ndarray
    handle: pd.DataFrame  # operator_id, handle_s
    exchanges: np.ndarray
    patience: np.ndarray
    patience_censored: np.ndarray
    handled: dict[int, int]  # operator -> replies + hand-backs
    unassigns: dict[int, int]
    idle_episodes: dict[int, int]
    concurrency: dict[int, int]  # operator -> most chats held at once
    activity: dict[int, np.ndarray]  # operator -> times of its own actions (assign, reply, hand-back)
    returning_share: float | None
    users: int


def _by_chat(log: pd.DataFrame) -> pd.DataFrame:
    out = log.loc[log["chat_id"].notna(), ["time", "chat_id", "operator_id", "event", "reason", "to_state",
                                           "from_state", "user_id"]].copy()
    out["event"] = out["event"].astype(str)
    return out.sort_values(["chat_id", "time"], kind="stable")


def _think(chats: pd.DataFrame) -> np.ndarray:
    think = []
    last_reply: float | None = None
    current = None
    for t, e, c in zip(chats["time"].to_numpy(), chats["event"].to_numpy(), chats["chat_id"].to_numpy()):
        if c != current:
            current, last_reply = c, None
        if e == "operator_reply":
            last_reply = t
        elif e == "user_message" and last_reply is not None:
            think.append(t - last_reply)
            last_reply = None
        elif e == "end":
            last_reply = None
    return np.asarray(think, dtype=float)


def _handle(chats: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, int]]:
    """Per-operator effort per reply/hand-back (see the module docstring), and most chats held at once."""
    holder: dict[int, tuple[int, float]] = {}  # chat -> (operator, when the hold began)
    asked: dict[int, float] = {}  # chat -> time of the user's last message
    rows: list[tuple[int, float, str, float]] = []  # (operator, done, kind, ready)
    held: dict[int, int] = {}
    most: dict[int, int] = {}
    ordered = chats.sort_values("time", kind="stable")
    for t, c, op, e, why in zip(ordered["time"], ordered["chat_id"], ordered["operator_id"], ordered["event"],
                                ordered["reason"].astype(str)):
        c = int(c)
        if e == "user_message":
            asked[c] = t
        elif e == "assign":
            o = int(op)
            holder[c] = (o, t)
            held[o] = held.get(o, 0) + 1
            most[o] = max(most.get(o, 0), held[o])
        elif c in holder and e in ("operator_reply", "unassign", "idle_release", "stuck_release", "end"):
            o, began = holder.pop(c)
            held[o] -= 1
            if e in _WORK_DONE and why != "operator_offline":  # a log-out's release is no effort
                rows.append((o, t, e, max(began, asked.get(c, began))))
    frame = pd.DataFrame(rows, columns=["operator_id", "done", "kind", "ready"])
    frame = frame.sort_values(["operator_id", "done"], kind="stable")
    prev_done = frame.groupby("operator_id")["done"].shift(1)
    start = np.maximum(frame["ready"].to_numpy(dtype=float), prev_done.fillna(-np.inf).to_numpy(dtype=float))
    frame["handle_s"] = frame["done"].to_numpy(dtype=float) - start
    return frame[["operator_id", "handle_s", "kind"]].reset_index(drop=True), most


def collect(log: pd.DataFrame) -> Samples:
    """Every observation the fits need, from one event log."""
    chats = _by_chat(log)
    firsts = chats.groupby("chat_id", sort=False).head(1)
    arrivals = np.sort(firsts["time"].to_numpy(dtype=float))
    handle, most = _handle(chats)
    replies = chats[chats["event"] == "operator_reply"].groupby("chat_id").size()
    resolved = chats[(chats["event"] == "end") & (chats["reason"].astype(str) == "resolved")]["chat_id"]
    exchanges = replies.reindex(resolved.to_numpy()).dropna().to_numpy(dtype=int)
    waits = wait_episodes(log)
    patience = waits.loc[waits["outcome"] == "ended", "wait_s"].to_numpy(dtype=float)
    # served waits, and those still open when the period ends, say only "patience was longer"
    censored = waits.loc[waits["outcome"].isin(["served", "open"]), "wait_s"].to_numpy(dtype=float)
    ops = chats[chats["operator_id"].notna()]
    worked = ops[ops["event"].isin(_WORK_DONE) & (ops["reason"].astype(str) != "operator_offline")]
    handled = {int(k): int(v) for k, v in worked.groupby("operator_id").size().items()}
    unassigns = {int(k): int(v) for k, v in worked[worked["event"] == "unassign"].groupby("operator_id").size().items()}
    idle = ops[ops["event"] == "idle_release"]
    idle_episodes = {int(k): int(g["time"].round(3).nunique()) for k, g in idle.groupby("operator_id")}
    acts = ops[ops["event"].isin(("assign", *_WORK_DONE))]
    activity = {int(k): np.sort(g["time"].to_numpy(dtype=float)) for k, g in acts.groupby("operator_id")}
    users = firsts["user_id"]
    returning = None
    if users.notna().any():
        known = users.dropna().astype("int64")
        ordered = firsts.loc[known.index].sort_values("time")["user_id"]
        returning = float(ordered.duplicated().mean())
    return Samples(arrivals, _think(chats), handle, exchanges, patience, censored, handled, unassigns, idle_episodes,
                   most, activity, returning, int(users.nunique()))
