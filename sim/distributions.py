"""Random durations and counts for scenario files: small frozen objects with ``sample`` and ``mean``.

A scenario writes a distribution as an inline TOML table, e.g.
``handle_time = { dist = "lognormal", mean = 90, sd = 60 }``, or as a bare number, which
means a constant.  Every distribution is parametrised by what an engineer actually knows
(its mean and, where it has one, its standard deviation) rather than by the textbook
parameters, so swapping ``gamma`` for ``lognormal`` keeps the same load.

=============  ===========================  =================================================
``dist``       keys                         notes
=============  ===========================  =================================================
constant       ``value``                    always ``value``
exponential    ``mean``                     memoryless; what M/M/c assumes
uniform        ``low``, ``high``            ``low <= high``
lognormal      ``mean``, ``sd``             long right tail (typical of handling times)
gamma          ``mean``, ``sd``             shape = (mean/sd)^2
normal         ``mean``, ``sd``             negative draws are clipped to 0; ``.mean`` is the
                                            mean *after* clipping
discrete       ``values``, ``weights``      an empirical distribution: ``values[i]`` with
                                            probability ``weights[i] / sum(weights)`` (what
                                            ``chatlab calibrate`` writes for exchanges)
=============  ===========================  =================================================

All parameters must be finite and >= 0 (``sd`` of lognormal/gamma > 0).  Sampling takes
the caller's :class:`numpy.random.Generator`, so reproducibility is the caller's seed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from sim.errors import DistributionError


class Distribution:
    """Base class: ``sample(rng)`` draws one non-negative float; ``mean`` is its expectation."""

    kind: ClassVar[str]

    @property
    def mean(self) -> float:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> float:  # pragma: no cover
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The TOML table that :func:`parse_distribution` turns back into this object."""
        out: dict[str, Any] = {"dist": self.kind}
        # dataclasses.fields, not __dataclass_fields__: the latter also lists the ClassVar ``kind``
        out.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})  # type: ignore[arg-type]
        return out


@dataclass(frozen=True)
class Constant(Distribution):
    value: float
    kind: ClassVar[str] = "constant"

    @property
    def mean(self) -> float:
        return self.value

    def sample(self, rng: np.random.Generator) -> float:
        return self.value


@dataclass(frozen=True)
class _Mean(Distribution):
    """A distribution given by its mean (and, in subclasses, its standard deviation)."""

    mean_: float

    @property
    def mean(self) -> float:
        return self.mean_

    def to_dict(self) -> dict[str, Any]:
        return {"dist": self.kind, "mean": self.mean_}


@dataclass(frozen=True)
class Exponential(_Mean):
    kind: ClassVar[str] = "exponential"

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.exponential(self.mean_)) if self.mean_ > 0 else 0.0


@dataclass(frozen=True)
class Uniform(Distribution):
    low: float
    high: float
    kind: ClassVar[str] = "uniform"

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class _MeanSd(_Mean):
    """A distribution given by its mean and standard deviation (what an engineer knows)."""

    sd: float

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "sd": self.sd}


@dataclass(frozen=True)
class LogNormal(_MeanSd):
    """Log-normal with the given mean and standard deviation of the variable itself."""

    kind: ClassVar[str] = "lognormal"

    @property
    def mu_sigma(self) -> tuple[float, float]:
        """Parameters of the underlying normal: sigma^2 = ln(1 + cv^2), mu = ln(mean) - sigma^2/2."""
        sigma2 = math.log1p((self.sd / self.mean_) ** 2)
        return math.log(self.mean_) - sigma2 / 2, math.sqrt(sigma2)

    def sample(self, rng: np.random.Generator) -> float:
        if self.mean_ == 0:
            return 0.0
        mu, sigma = self.mu_sigma
        return float(rng.lognormal(mu, sigma))


@dataclass(frozen=True)
class Gamma(_MeanSd):
    """Gamma with the given mean and standard deviation (shape k = (mean/sd)^2, scale = sd^2/mean)."""

    kind: ClassVar[str] = "gamma"

    def sample(self, rng: np.random.Generator) -> float:
        if self.mean_ == 0:
            return 0.0
        shape = (self.mean_ / self.sd) ** 2
        return float(rng.gamma(shape, self.sd**2 / self.mean_))


@dataclass(frozen=True)
class ClippedNormal(_MeanSd):
    """Normal(mean, sd) with negative draws replaced by 0 (a duration cannot be negative).

    ``mean_`` is the normal's mean (what the scenario file says); :attr:`mean` is the mean
    after clipping.
    """

    kind: ClassVar[str] = "normal"

    @property
    def mean(self) -> float:
        """E[max(X, 0)] = mu * Phi(mu/sd) + sd * phi(mu/sd)."""
        if self.sd == 0:
            return max(self.mean_, 0.0)
        z = self.mean_ / self.sd
        phi = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        cdf = 0.5 * (1 + math.erf(z / math.sqrt(2)))
        return self.mean_ * cdf + self.sd * phi

    def sample(self, rng: np.random.Generator) -> float:
        return max(0.0, float(rng.normal(self.mean_, self.sd)))


@dataclass(frozen=True)
class Discrete(Distribution):
    """``values[i]`` with probability ``weights[i] / sum(weights)`` (an observed histogram)."""

    values: tuple[float, ...]
    weights: tuple[float, ...]
    kind: ClassVar[str] = "discrete"

    @property
    def probabilities(self) -> np.ndarray:
        w = np.asarray(self.weights, dtype=float)
        return w / w.sum()

    @property
    def mean(self) -> float:
        return float(np.dot(self.values, self.probabilities))

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.values[int(rng.choice(len(self.values), p=self.probabilities))])

    def scaled(self, factor: float) -> Discrete:
        return Discrete(tuple(v * factor for v in self.values), self.weights)

    def to_dict(self) -> dict[str, Any]:
        return {"dist": "discrete", "values": list(self.values), "weights": list(self.weights)}


def _numbers(value: Any, field: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not value or len(value) > 10_000:
        raise DistributionError(field, f"a non-empty list of numbers, got {value!r}")
    return tuple(_number(v, field) for v in value)


def _discrete(spec: Mapping[str, Any], sub: Any) -> Discrete:
    values = _numbers(spec["values"], sub("values"))
    weights = _numbers(spec["weights"], sub("weights"))
    if len(weights) != len(values):
        raise DistributionError(sub("weights"), f"one weight per value ({len(values)}), got {len(weights)}")
    if not sum(weights) > 0:
        raise DistributionError(sub("weights"), "weights with a positive sum")
    return Discrete(values, weights)


#: dist name -> (required keys, optional keys with defaults)
_KEYS: dict[str, tuple[tuple[str, ...], dict[str, float]]] = {
    "constant": (("value",), {}),
    "exponential": (("mean",), {}),
    "uniform": (("low", "high"), {}),
    "lognormal": (("mean", "sd"), {}),
    "gamma": (("mean", "sd"), {}),
    "normal": (("mean", "sd"), {}),
    "discrete": (("values", "weights"), {}),
}
DIST_NAMES: tuple[str, ...] = tuple(_KEYS)


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DistributionError(field, f"a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise DistributionError(field, f"a finite number >= 0, got {value!r}")
    return value


def parse_distribution(spec: Any, field: str = "") -> Distribution:
    """Build a distribution from a TOML value (a table with ``dist`` or a bare number).

    Raises :class:`DistributionError` whose ``field`` is the dotted path below ``field``
    (e.g. ``operators.handle_time.sd``) and whose message says what was expected.
    """
    def sub(key: str) -> str:
        return f"{field}.{key}" if field else key

    if isinstance(spec, Distribution):
        return spec
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Constant(_number(spec, field))
    if not isinstance(spec, Mapping):
        raise DistributionError(
            field, f"a number or a table like {{ dist = \"exponential\", mean = 60 }}, got {spec!r}"
        )
    if "dist" not in spec:
        raise DistributionError(sub("dist"), f"one of {', '.join(DIST_NAMES)} (the key is missing)")
    kind = spec["dist"]
    if kind not in _KEYS:
        raise DistributionError(sub("dist"), f"one of {', '.join(DIST_NAMES)}, got {kind!r}")
    required, optional = _KEYS[kind]
    allowed = {"dist", *required, *optional}
    for key in spec:
        if key not in allowed:
            raise DistributionError(sub(str(key)), f"no such key for dist = {kind!r}; allowed keys: {', '.join(sorted(allowed))}")
    if kind == "discrete":
        for key in required:
            if key not in spec:
                raise DistributionError(sub(key), f"a list of numbers (required for dist = {kind!r})")
        return _discrete(spec, sub)
    values: dict[str, float] = dict(optional)
    for key in required:
        if key not in spec:
            raise DistributionError(sub(key), f"a number (required for dist = {kind!r})")
        values[key] = _number(spec[key], sub(key))
    for key in optional:
        if key in spec:
            values[key] = _number(spec[key], sub(key))
    if kind == "constant":
        return Constant(values["value"])
    if kind == "exponential":
        return Exponential(values["mean"])
    if kind == "uniform":
        if values["low"] > values["high"]:
            raise DistributionError(sub("high"), f"high >= low ({values['low']:g}), got {values['high']:g}")
        return Uniform(values["low"], values["high"])
    if kind in ("lognormal", "gamma"):
        if values["sd"] <= 0:
            raise DistributionError(sub("sd"), f"sd > 0 for dist = {kind!r} (use dist = \"constant\" for no spread)")
        if values["mean"] <= 0:
            raise DistributionError(sub("mean"), f"mean > 0 for dist = {kind!r}")
        cls = LogNormal if kind == "lognormal" else Gamma
        return cls(values["mean"], values["sd"])
    return ClippedNormal(values["mean"], values["sd"])


def count_from(value: float) -> int:
    """A drawn float turned into a count >= 1 (rounded half to even, then at least 1)."""
    return max(1, int(round(value)))
