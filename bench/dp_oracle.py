"""The independent oracle: our privacy events as dp-accounting DpEvents (tests, benchmarks)."""

from __future__ import annotations

from typing import Any

import dp_accounting

from vocab.privacy import DpSgdEvent, GaussianEvent, PrivacyEvent

__all__ = ["dp_event"]


def dp_event(e: PrivacyEvent) -> Any:
    """The same release as a dp-accounting DpEvent."""
    if isinstance(e, DpSgdEvent):
        step = dp_accounting.PoissonSampledDpEvent(
            e.sample_rate, dp_accounting.GaussianDpEvent(e.noise_multiplier)
        )
        return dp_accounting.SelfComposedDpEvent(step, e.steps)
    if isinstance(e, GaussianEvent):
        gaussian = dp_accounting.GaussianDpEvent(e.noise_multiplier)
        return dp_accounting.SelfComposedDpEvent(gaussian, e.count)
    return dp_accounting.SelfComposedDpEvent(dp_accounting.LaplaceDpEvent(e.scale), e.count)
