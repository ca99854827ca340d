"""Recording a :class:`~sim.system.ChatSystem`'s operations, and replaying them on another one.

Why: the event log shows every state change but not every call (heartbeats, the random
policy's salts, calls that changed nothing).  With ``record_calls=True`` the system keeps
each successful outermost operation as a :class:`Call`; :func:`replay_calls` applies them to
a fresh system (the same loop with the SQL functions is the database replay), and a
difference in any result is a difference in behaviour.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from sim.policies import Policy

if TYPE_CHECKING:
    from sim.system import ChatSystem


class Call(NamedTuple):
    """One successful operation, for replaying the same sequence against SQL (``record_calls=True``).

    ``args`` are the call's arguments by name (``now`` excluded: it is ``time``); a policy is
    recorded as its name plus its parameters, so the call can be repeated against the SQL
    ``assign_chat_to_operator(op, policy, fallback_after, salt)``.  ``result`` is what the
    call returned (for ``assign``: the chosen chat or None — the decision to compare).
    """

    time: float
    name: str
    args: dict[str, Any]
    result: Any


_F = TypeVar("_F", bound=Callable[..., Any])


def recorded(fn: _F) -> _F:
    """Record successful outermost calls in ``self.calls`` when it is a list (else no cost but a check)."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(self: "ChatSystem", *args: Any, **kwargs: Any) -> Any:
        if self.calls is None:
            return fn(self, *args, **kwargs)
        self._depth += 1
        try:
            result = fn(self, *args, **kwargs)
        finally:
            self._depth -= 1
        if self._depth == 0:
            bound = sig.bind(self, *args, **kwargs)
            bound.apply_defaults()
            named = {k: v for k, v in bound.arguments.items() if k not in ("self", "now")}
            policy = named.get("policy")
            if isinstance(policy, Policy):
                named["policy"] = policy.name
                named.update(policy.params)
            elif isinstance(policy, str) and policy == "exclude_last_fallback" and named.get("fallback_after") is None:
                named.update(self._policy(policy).params)
            if isinstance(result, list):
                result = list(result)
            self.calls.append(Call(self.now, fn.__name__, named, result))
        return result

    return wrapper  # type: ignore[return-value]


def replay_calls(calls: Iterable[Call], system: ChatSystem | None = None) -> tuple[ChatSystem, list[tuple[Call, Any]]]:
    """Apply recorded calls to ``system`` (a fresh one by default), in order, at their times.

    Returns the system and the calls whose result differed, as ``(call, result here)``.
    The same loop, with the SQL functions instead of these methods, is the database replay:
    an empty difference list means both took the same decisions.
    """
    if system is None:
        from sim.system import ChatSystem  # at call time: the system module imports this one

        system = ChatSystem()
    differences: list[tuple[Call, Any]] = []
    for call in calls:
        args = dict(call.args)
        if call.name == "assign" and args.get("policy") != "exclude_last_fallback":
            args["fallback_after"] = None
        got = getattr(system, call.name)(**args, now=call.time)
        if got != call.result:
            differences.append((call, got))
    return system, differences
