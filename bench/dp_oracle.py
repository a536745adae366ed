"""The independent oracle: our privacy events as dp-accounting DpEvents (tests, benchmarks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dp_accounting

from vocab.privacy import DpSgdEvent, GaussianEvent, GaussianThresholdEvent, PrivacyEvent

__all__ = ["consumed_delta", "dp_event"]


def dp_event(e: PrivacyEvent) -> Any:
    """The same release as a dp-accounting DpEvent.

    A `GaussianThresholdEvent` becomes its Gaussian releases alone: dp-accounting has no
    event that consumes a delta outright, so an oracle converts at the target delta less
    `consumed_delta` of the events.
    """
    if isinstance(e, DpSgdEvent):
        step = dp_accounting.PoissonSampledDpEvent(
            e.sample_rate, dp_accounting.GaussianDpEvent(e.noise_multiplier)
        )
        return dp_accounting.SelfComposedDpEvent(step, e.steps)
    if isinstance(e, GaussianEvent | GaussianThresholdEvent):
        gaussian = dp_accounting.GaussianDpEvent(e.noise_multiplier)
        return dp_accounting.SelfComposedDpEvent(gaussian, e.count)
    return dp_accounting.SelfComposedDpEvent(dp_accounting.LaplaceDpEvent(e.scale), e.count)


def consumed_delta(events: Sequence[PrivacyEvent]) -> float:
    """The delta thresholded releases consume outright, summed (basic composition of their
    bad events): an oracle's epsilon is its conversion at the target delta less this."""
    return sum(e.delta for e in events if isinstance(e, GaussianThresholdEvent))
