"""Erlang C: the M/M/c queue in closed form, to check the simulation against theory.

With Poisson arrivals at rate ``lam``, ``c`` identical servers and exponential service at
rate ``mu`` each (offered load ``a = lam / mu`` Erlangs, utilisation ``rho = a / c < 1``):

* ``P(wait > 0) = C(c, a)`` (Erlang's C formula),
* mean wait in queue ``Wq = C(c, a) / (c mu - lam)``,
* service level ``P(W <= t) = 1 - C(c, a) exp(-(c mu - lam) t)``.

``C`` is computed from Erlang B by the recursion ``B(0) = 1``,
``B(k) = a B(k-1) / (k + a B(k-1))`` and ``C = c B / (c - a (1 - B))``: only ratios of
numbers in [0, 1], so it neither overflows (no ``a^c / c!``) nor loses precision for
``c`` in the hundreds or thousands.

The ``mm_c`` scenario maps onto it: ``lam = users.arrivals.rate``, ``mu = 1 /
operators.handle_time.mean``, ``c = operators.count`` (with ``max_chats = 1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sim.errors import ChatLabError


class QueueingError(ChatLabError):
    """Parameters outside the M/M/c model (non-positive rates, c < 1, unstable load)."""


def _check(c: int, a: float) -> None:
    if isinstance(c, bool) or not isinstance(c, int) or c < 1:
        raise QueueingError(f"number of servers c must be an integer >= 1, got {c!r}")
    if not (math.isfinite(a) and a >= 0):
        raise QueueingError(f"offered load a must be a finite number >= 0 Erlangs, got {a!r}")


def erlang_b(c: int, a: float) -> float:
    """Blocking probability of M/M/c/c with offered load ``a`` Erlangs."""
    _check(c, a)
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival has to wait in M/M/c (``a < c``; 1.0 when ``a >= c``)."""
    _check(c, a)
    if a >= c:
        return 1.0
    b = erlang_b(c, a)
    return c * b / (c - a * (1.0 - b))


@dataclass(frozen=True)
class MMc:
    """An M/M/c queue: arrival rate ``lam`` (1/s), service rate ``mu`` per server (1/s), ``c`` servers."""

    lam: float
    mu: float
    c: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lam) and self.lam > 0):
            raise QueueingError(f"arrival rate must be a finite number > 0 per second, got {self.lam!r}")
        if not (math.isfinite(self.mu) and self.mu > 0):
            raise QueueingError(f"service rate must be a finite number > 0 per second, got {self.mu!r}")
        _check(self.c, self.lam / self.mu)
        if self.lam >= self.c * self.mu:
            raise QueueingError(
                f"unstable queue: utilisation {self.rho:.3f} >= 1 (lam={self.lam:g}/s, c={self.c}, mu={self.mu:g}/s); "
                "the mean wait is infinite")

    @property
    def offered_load(self) -> float:
        """``a = lam / mu`` in Erlangs."""
        return self.lam / self.mu

    @property
    def rho(self) -> float:
        """Utilisation per server ``a / c``."""
        return self.lam / (self.c * self.mu)

    @property
    def p_wait(self) -> float:
        """``C(c, a)``: probability of waiting at all."""
        return erlang_c(self.c, self.offered_load)

    @property
    def mean_wait(self) -> float:
        """``Wq``: mean time in queue over all arrivals (s)."""
        return self.p_wait / (self.c * self.mu - self.lam)

    @property
    def mean_wait_of_waiters(self) -> float:
        """Mean wait of those who wait at all: ``1 / (c mu - lam)`` (s)."""
        return 1.0 / (self.c * self.mu - self.lam)

    def service_level(self, t: float) -> float:
        """``P(W <= t)``: share of arrivals assigned within ``t`` seconds."""
        if not (t >= 0):
            raise QueueingError(f"service-level threshold must be >= 0 seconds, got {t!r}")
        return 1.0 - self.p_wait * math.exp(-(self.c * self.mu - self.lam) * t)

    def wait_quantile(self, q: float) -> float:
        """The ``q``-quantile (0 <= q < 1) of the wait (s); 0 when ``q <= 1 - C``."""
        if not (0 <= q < 1):
            raise QueueingError(f"quantile must be in [0, 1), got {q!r}")
        pw = self.p_wait
        if q <= 1 - pw:
            return 0.0
        return math.log(pw / (1 - q)) / (self.c * self.mu - self.lam)


def mmc_from_scenario(scenario: object) -> MMc:
    """The M/M/c queue a scenario approximates (Poisson rate, mean handle time, operator count)."""
    arrivals = scenario.users.arrivals  # type: ignore[attr-defined]
    ops = scenario.operators  # type: ignore[attr-defined]
    if arrivals.kind != "poisson":
        raise QueueingError(f"Erlang C needs Poisson arrivals; scenario {scenario.name!r} has {arrivals.kind!r}")  # type: ignore[attr-defined]
    return MMc(lam=arrivals.rate * arrivals.scale, mu=1.0 / ops.handle_time.mean, c=ops.count)
