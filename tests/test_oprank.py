"""The operator-ordered fast path (sim/oprank.py) answers every ask as the policy's own pick does.

Two systems get the same random sequence of operations — operators logging in and out, chats
arriving, asks by random operators, replies, unassigns, ends — one with the rank index, one
with it switched off (every ask goes through a snapshot and ``policy.pick``).  Their event logs
must be identical, row for row, for round_robin, least_loaded and longest_idle.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim.policies import make_policy
from sim.statemachine import State
from sim.system import ChatSystem


def _play(policy: str, seed: int, ranked: bool) -> list[tuple]:
    rng = np.random.default_rng(seed)
    system = ChatSystem()
    if not ranked:
        system._ranked_ahead = lambda op, pol: None  # type: ignore[method-assign]
    pol = make_policy(policy)
    ops = [system.create_operator(max_chats=int(rng.integers(1, 4)), now=0.0) for _ in range(25)]
    t, user = 0.0, 0
    for _ in range(1500):
        t += float(rng.exponential(1.0))
        r = rng.random()
        if r < 0.05:
            system.set_operator_online(int(rng.choice(ops)), bool(rng.random() < 0.8), now=t)
        elif r < 0.25:
            user += 1
            system.real_user_message(user, now=t)
        elif r < 0.7:
            system.assign(int(rng.choice(ops)), pol, now=t)
        else:
            held = [(o, c) for o in ops for c in sorted(system.chats_of(o))]
            if held:
                o, c = held[int(rng.integers(len(held)))]
                what = rng.random()
                if what < 0.6:
                    system.operator_message(o, c, now=t)
                elif what < 0.8:
                    system.unassign_chat(o, c, now=t)
                else:
                    system.end_chat(c, "resolved", now=t)
            waiting_reply = [c.id for c in system.open_chats() if c.state is State.WAITING_REAL_USER_REPLY]
            if waiting_reply and rng.random() < 0.5:
                c = waiting_reply[int(rng.integers(len(waiting_reply)))]
                system.real_user_message(system.chats[c].real_user_id, "again", c, now=t)
    return list(system.log._rows)


@pytest.mark.parametrize("policy", ["round_robin", "least_loaded", "longest_idle"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rank_index_gives_the_same_assignments_as_the_policy(policy: str, seed: int) -> None:
    fast, slow = _play(policy, seed, ranked=True), _play(policy, seed, ranked=False)
    assigns = sum(1 for row in slow if row[3] == "assign")
    assert assigns > 100  # the sequence really exercises the policy
    assert fast == slow
