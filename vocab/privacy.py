"""Immutable privacy values: budgets and the mechanism events the ledger composes."""

from __future__ import annotations

import enum
import math
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


@dataclass(frozen=True)
class DpSgdEvent:
    """One DP-SGD release: `steps` noisy steps, Poisson rate `sample_rate`, noise `sigma`.

    `noise_multiplier` is the Gaussian std divided by the clipping norm (L2 sensitivity).
    """

    noise_multiplier: float
    sample_rate: float
    steps: int

    def __post_init__(self) -> None:
        if not (self.noise_multiplier > 0 and math.isfinite(self.noise_multiplier)):
            raise ConfigError(
                f"noise multiplier must be positive and finite, got {self.noise_multiplier!r}"
            )
        if not (0 < self.sample_rate <= 1):
            raise ConfigError(f"sample rate must be in (0, 1], got {self.sample_rate!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"steps must be a positive integer, got {self.steps!r}")

    @property
    def mechanism(self) -> Mechanism:
        return Mechanism.SUBSAMPLED_GAUSSIAN
