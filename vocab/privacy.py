"""Immutable privacy values: budgets and the mechanism events the ledger composes."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass

from vocab.errors import ConfigError


def _finite_nonneg(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}", f"set {name} to a number")
    v = float(value)
    if math.isnan(v) or math.isinf(v) or v < 0:
        raise ConfigError(
            f"{name} must be a finite non-negative number, got {value!r}",
            f"set {name} to a value >= 0",
        )
    return v


@dataclass(frozen=True)
class Budget:
    """A privacy budget (epsilon, delta): epsilon > 0 finite, delta in [0, 1)."""

    epsilon: float
    delta: float

    def __post_init__(self) -> None:
        eps = _finite_nonneg("epsilon", self.epsilon)
        if eps == 0:
            raise ConfigError("epsilon must be > 0", "set a positive epsilon")
        delta = _finite_nonneg("delta", self.delta)
        if delta >= 1:
            raise ConfigError(f"delta must be in [0, 1), got {self.delta!r}", "use e.g. 1e-5")
        object.__setattr__(self, "epsilon", eps)
        object.__setattr__(self, "delta", delta)


class Mechanism(enum.Enum):
    """Mechanisms the node ledger knows how to account for."""

    SUBSAMPLED_GAUSSIAN = "subsampled_gaussian"
    """DP-SGD: Poisson-subsampled Gaussian steps (Opacus)."""
    GAUSSIAN = "gaussian"
    """A noisy statistic with Gaussian noise calibrated to its L2 sensitivity."""
    LAPLACE = "laplace"
    """A noisy statistic with Laplace noise calibrated to its L1 sensitivity."""
    GAUSSIAN_THRESHOLD = "gaussian_threshold"
    """Gaussian statistics over groups a node chose by thresholding their noisy counts."""


def _positive_finite(kind: str, name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{kind} {name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{kind} {name} must be positive and finite, got {value!r}")


def _positive_count(kind: str, name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{kind} {name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class DpSgdEvent:
    """One DP-SGD release: `steps` noisy steps, Poisson rate `sample_rate`, noise `sigma`.

    `noise_multiplier` is the Gaussian std divided by the clipping norm (L2 sensitivity).
    """

    noise_multiplier: float
    sample_rate: float
    steps: int

    def __post_init__(self) -> None:
        _positive_finite("DP-SGD", "noise multiplier", self.noise_multiplier)
        if not (0 < self.sample_rate <= 1):
            raise ConfigError(f"sample rate must be in (0, 1], got {self.sample_rate!r}")
        _positive_count("DP-SGD", "steps", self.steps)

    @property
    def mechanism(self) -> Mechanism:
        return Mechanism.SUBSAMPLED_GAUSSIAN

    def params(self) -> dict[str, float | int]:
        """The parameters the ledger stores; `event_from_params` rebuilds the event."""
        return {
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps": self.steps,
        }


@dataclass(frozen=True)
class GaussianEvent:
    """`count` releases of the Gaussian mechanism (a noisy sum, count, mean...).

    `noise_multiplier` is the noise std divided by the statistic's L2 sensitivity.
    """

    noise_multiplier: float
    count: int = 1

    def __post_init__(self) -> None:
        _positive_finite("Gaussian", "noise multiplier", self.noise_multiplier)
        _positive_count("Gaussian", "count", self.count)

    @property
    def mechanism(self) -> Mechanism:
        return Mechanism.GAUSSIAN

    def params(self) -> dict[str, float | int]:
        return {"noise_multiplier": self.noise_multiplier, "count": self.count}


@dataclass(frozen=True)
class LaplaceEvent:
    """`count` releases of the Laplace mechanism.

    `scale` is the Laplace scale b divided by the statistic's L1 sensitivity; one release
    is (1 / scale)-DP.
    """

    scale: float
    count: int = 1

    def __post_init__(self) -> None:
        _positive_finite("Laplace", "scale", self.scale)
        _positive_count("Laplace", "count", self.count)

    @property
    def mechanism(self) -> Mechanism:
        return Mechanism.LAPLACE

    def params(self) -> dict[str, float | int]:
        return {"scale": self.scale, "count": self.count}


@dataclass(frozen=True)
class GaussianThresholdEvent:
    """`count` Gaussian releases over partitions chosen by thresholding their noisy counts.

    Its RDP curve is that of `GaussianEvent(noise_multiplier, count)`, and it consumes
    `delta` outright: the chance that a partition only one person makes passes the
    threshold (`vocab.jobs.statistics_plan` gives the argument; `vocab.accounting`
    converts the composed curve at the target delta less every such `delta`).
    """

    noise_multiplier: float
    count: int
    delta: float

    def __post_init__(self) -> None:
        _positive_finite("Gaussian threshold", "noise multiplier", self.noise_multiplier)
        _positive_count("Gaussian threshold", "count", self.count)
        _positive_finite("Gaussian threshold", "delta", self.delta)
        if not self.delta < 1:
            raise ConfigError(f"Gaussian threshold delta must be below 1, got {self.delta!r}")

    @property
    def mechanism(self) -> Mechanism:
        return Mechanism.GAUSSIAN_THRESHOLD

    def params(self) -> dict[str, float | int]:
        return {"noise_multiplier": self.noise_multiplier, "count": self.count, "delta": self.delta}


PrivacyEvent = DpSgdEvent | GaussianEvent | LaplaceEvent | GaussianThresholdEvent
"""Every release the ledger can charge."""


def event_from_params(mechanism: str, params: Mapping[str, float | int]) -> PrivacyEvent:
    """Rebuilds an event from what the ledger stored (`event.mechanism.value`, `params()`).

    Raises:
        ConfigError: The mechanism is unknown or the parameters do not fit it.
    """
    try:
        kind = Mechanism(mechanism)
    except ValueError:
        known = ", ".join(m.value for m in Mechanism)
        raise ConfigError(f"unknown mechanism {mechanism!r}; known: {known}") from None
    try:
        if kind is Mechanism.SUBSAMPLED_GAUSSIAN:
            return DpSgdEvent(
                float(params["noise_multiplier"]),
                float(params["sample_rate"]),
                _as_int(params["steps"]),
            )
        if kind is Mechanism.GAUSSIAN:
            return GaussianEvent(float(params["noise_multiplier"]), _as_int(params["count"]))
        if kind is Mechanism.GAUSSIAN_THRESHOLD:
            return GaussianThresholdEvent(
                float(params["noise_multiplier"]),
                _as_int(params["count"]),
                float(params["delta"]),
            )
        return LaplaceEvent(float(params["scale"]), _as_int(params["count"]))
    except KeyError as missing:
        raise ConfigError(f"{kind.value} event lacks parameter {missing}") from None


def _as_int(value: float | int) -> int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value  # type: ignore[return-value]  # validated by the event's __post_init__
