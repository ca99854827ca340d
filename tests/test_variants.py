"""The buggy variants (``sim/variants.py``, their SQL twins in migration 020) pinned by hand on
both implementations: each shows its reported bug where the lab's policy does not.

The random agreement test checks every variant against its SQL twin on random states; these
cases pin the very behaviour each bug report describes.
"""

from __future__ import annotations

import pytest
from twins import Both

from sim.errors import UnknownPolicy
from sim.policies import KNOWN_NAMES, POLICY_NAMES, VARIANT_NAMES, make_policy, parse_policy_list
from sim.variants import VARIANTS


@pytest.fixture
def both(db) -> Both:
    return Both(db)


def _serve(both: Both, op: int, user: int, policy: str = "exclude_last") -> None:
    chat = both.chat(user)
    assert both.assign(op, policy) == chat
    both.reply(op, chat)
    both.end(chat)


def test_the_variants_are_known_by_name_but_never_a_default() -> None:
    assert tuple(VARIANTS) == VARIANT_NAMES and not set(VARIANT_NAMES) & set(POLICY_NAMES)
    assert KNOWN_NAMES == POLICY_NAMES + VARIANT_NAMES
    assert parse_policy_list("newest_first,exclude_last") == ["newest_first", "exclude_last"]
    for name in VARIANT_NAMES:
        assert make_policy(name).name == name
    with pytest.raises(UnknownPolicy, match="buggy variant"):
        make_policy("oldest_last")


def test_lifetime_least_loaded_sends_every_chat_to_the_returner(both: Both) -> None:
    """Rocket.Chat #13134: the veteran served 3 chats, the returner (back from vacation) none."""
    veteran, returner = both.operator(max_chats=3), both.operator(max_chats=3)
    both.online(returner, False)
    for user in (1, 2, 3):
        _serve(both, veteran, user)
    both.at(10).online(returner, True)
    first = both.chat(4)
    assert both.assign(returner, "least_loaded_lifetime") == first  # now it holds 1, the veteran 0
    second = both.at(11).chat(5)
    # lifetime counts: the returner (1 ever) still ranks before the veteran (3 ever) and takes it
    assert both.assign(veteran, "least_loaded_lifetime") is None
    # least_loaded counts what they hold: the veteran (0) before the returner (1)
    assert both.assign(veteran, "least_loaded") == second


def test_ties_by_creation_order_always_pick_the_first_operator(both: Both) -> None:
    """Rocket.Chat #6802: both hold nothing; op 1 just served a chat, yet it goes first again."""
    first_created, other = both.operator(max_chats=2), both.operator(max_chats=2)
    _serve(both, first_created, 1, "least_loaded_by_creation")
    chat = both.at(5).chat(2)
    assert both.assign(other, "least_loaded_by_creation") is None  # the tie goes to op 1 again
    assert both.assign(other, "least_loaded") == chat              # least_loaded rotates (last assignment)


def test_newest_first_lets_a_newer_chat_jump_the_queue(both: Both) -> None:
    """Chatwoot #10583: when capacity frees up, the newer chat is taken before the queued one."""
    op = both.operator()
    older = both.chat(1)
    newer = both.at(30).chat(2)
    assert both.assign(op, "newest_first") == newer
    both.reply(op, newer)
    assert both.assign(op, "exclude_last") == older


def test_sticky_offline_holds_a_returning_chat_for_an_offline_agent(both: Both) -> None:
    """Chatwoot #4158: the former agent logged out; the chat waits for it instead of going to another."""
    agent, other = both.operator(), both.operator()
    _serve(both, agent, 1)
    both.online(agent, False)
    returning = both.at(5).chat(1)
    assert both.assign(other, "sticky_offline", sticky_for=600) is None
    assert both.assign(other, "exclude_last", sticky_for=600) == returning


def test_the_unlocked_variant_decides_like_the_fix(both: Both) -> None:
    """Chatwoot #11034 / Rocket.Chat #18217: the bug is a race (tests/test_db_concurrency.py shows it)."""
    a, b = both.operator(max_chats=2), both.operator()
    c1, c2 = both.chat(1), both.at(1).chat(2)
    assert both.assign(a, "exclude_last_unlocked") == c1
    assert both.assign(b, "exclude_last_unlocked") == c2
    assert both.assign(b, "exclude_last_unlocked") is None  # full: the check is there, only the lock is not
