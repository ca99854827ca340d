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


@dataclass(frozen=True)
class MMcM:
    """Erlang A, the M/M/c+M queue: :class:`MMc` plus exponential patience (rate ``theta`` = 1 / mean patience).

    A waiting customer abandons at rate ``theta``, so the queue is stable at any load.  The
    state is the number in system, a birth-death chain (birth ``lam``, death ``min(n, c) mu +
    max(n - c, 0) theta``), solved in log space and truncated where the tail is below 1e-15.
    An arrival (PASTA: it sees the stationary state) finding ``k`` customers queued ahead is
    served within ``t`` when its ``k + 1`` queue departures (each at rate ``c mu + j theta``,
    ``j`` ahead) come before its own patience runs out: ``P`` from one sparse matrix
    exponential (``scipy.sparse.linalg.expm_multiply``) over all ``k`` at once.
    ``theta = 0`` is Erlang C (closed form: :class:`MMc`).
    """

    lam: float
    mu: float
    c: int
    theta: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lam) and self.lam > 0 and math.isfinite(self.mu) and self.mu > 0):
            raise QueueingError(f"rates must be finite numbers > 0, got lam={self.lam!r}, mu={self.mu!r}")
        _check(self.c, self.lam / self.mu)
        if not (math.isfinite(self.theta) and self.theta > 0):
            raise QueueingError(f"abandonment rate theta must be a finite number > 0 (1 / mean patience), "
                                f"got {self.theta!r}; with no abandonment use MMc (Erlang C)")

    def _pi(self):  # noqa: ANN202 - numpy array of the stationary distribution
        import numpy as np

        logs = [0.0]
        n = 0
        while True:
            n += 1
            death = min(n, self.c) * self.mu + max(n - self.c, 0) * self.theta
            logs.append(logs[-1] + math.log(self.lam) - math.log(death))
            if n > self.c and logs[-1] - max(logs) < math.log(1e-15) or n > self.c + 200_000:
                break
        arr = np.exp(np.asarray(logs) - max(logs))
        return arr / arr.sum()

    @property
    def p_wait(self) -> float:
        """Probability that an arrival finds every operator busy."""
        return float(self._pi()[self.c:].sum())

    @property
    def p_abandon(self) -> float:
        """Share of arrivals that give up: abandonment flow / arrival flow."""
        import numpy as np

        pi = self._pi()
        queued = np.maximum(np.arange(len(pi)) - self.c, 0)
        return float((pi * queued).sum() * self.theta / self.lam)

    def service_level(self, t: float) -> float:
        """Share of all arrivals assigned within ``t`` seconds (an abandoned one never is)."""
        import numpy as np
        from scipy.sparse import csc_matrix
        from scipy.sparse.linalg import expm_multiply

        if not (t >= 0):
            raise QueueingError(f"service-level threshold must be >= 0 seconds, got {t!r}")
        pi = self._pi()
        k = len(pi) - self.c  # customers an arrival may find queued ahead: 0 .. k-1
        if k <= 0:
            return 1.0
        # states 0..k-1 = queued ahead, k = served (absorbing); the arrival's own abandonment (rate
        # theta from every state) leaves the chain, so the rows of the generator sum to -theta
        ahead = np.arange(k, dtype=float)
        rate_on = self.c * self.mu + ahead * self.theta  # the queue's front moves on (a service or an abandonment)
        rows = np.concatenate([np.arange(k), np.arange(1, k), [0]])
        cols = np.concatenate([np.arange(k), np.arange(0, k - 1), [k]])
        vals = np.concatenate([-(rate_on + self.theta), rate_on[1:], [rate_on[0]]])
        gen = csc_matrix((vals, (rows, cols)), shape=(k + 1, k + 1))
        served = np.zeros(k + 1)
        served[k] = 1.0
        within = expm_multiply(gen * t, served)  # P(served by t | start state)
        return float(pi[: self.c].sum() + (pi[self.c:] * within[:k]).sum())
