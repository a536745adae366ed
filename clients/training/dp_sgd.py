"""DP-SGD at the node with Opacus, its noise and sampling drawn from a secure generator.

Opacus is the engine: `GradSampleModule` computes per-sample gradients and `DPOptimizer`
clips, noises and averages them. Two things differ from `PrivacyEngine.make_private`:

* the Gaussian noise and the Poisson batches come from `SecureRng` (ChaCha20 keyed from the
  OS), not from torch's generator, whose seed a coordinator could search;
* a row whose per-sample gradient is not finite (crafted weights can overflow one row's
  activations) contributes nothing instead of turning the whole sum into NaN. Otherwise
  whether a round "fails" would depend on single rows: an oracle outside the accounting.
  Zeroing a row keeps its contribution within the clipping norm, so the sensitivity the
  ledger charges for still holds;
* the Poisson sample is drawn over `slots` (the officer's public size bound), not over
  the true rows: slots past the last row are phantom rows of zeros whose loss weighs
  nothing, so each step does the same work whatever the row count, and how long a round
  takes (or whether it hits the node's wall-time limit) says nothing about it. Phantom
  rows add exactly zero to the gradient sum; the real rows are Poisson-sampled at the
  planned rate, as the accounting assumes.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed
from torch import nn

from clients.secure_noise import SecureRng

__all__ = [
    "RoundResult",
    "RoundTimeout",
    "SecureDPOptimizer",
    "SgdSettings",
    "dp_sgd_round",
]


class RoundTimeout(Exception):
    """Training ran past the node's wall-time limit for a round."""


class SecureDPOptimizer(DPOptimizer):  # type: ignore[misc]
    """Opacus' DPOptimizer with secure noise and non-finite rows dropped before clipping."""

    def __init__(self, *args: object, rng: SecureRng, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._rng = rng

    def clip_and_accumulate(self) -> None:
        samples = self.grad_samples
        # One sum per parameter is non-finite if any entry is (or if the sum overflows):
        # only then is the exact per-row check worth its cost (a third of a step's time).
        if samples and len(samples[0]) > 0 and not all(bool(g.sum().isfinite()) for g in samples):
            finite = torch.stack(
                [torch.isfinite(g.reshape(len(g), -1)).all(dim=1) for g in samples]
            ).all(dim=0)
            if not bool(finite.all()):
                for p in self.params:
                    p.grad_sample[~finite] = 0.0
        super().clip_and_accumulate()

    def add_noise(self) -> None:
        std = self.noise_multiplier * self.max_grad_norm
        for p in self.params:
            _check_processed_flag(p.summed_grad)
            noise = self._rng.gaussian(tuple(p.summed_grad.shape), std)
            p.grad = (p.summed_grad + torch.from_numpy(noise).to(p.summed_grad.dtype)).view_as(p)
            _mark_as_processed(p.summed_grad)


@dataclass(frozen=True)
class RoundResult:
    """What one local round produced: new weights and the steps actually taken."""

    model: nn.Module
    steps: int


@dataclass(frozen=True)
class SgdSettings:
    """One round's DP-SGD: the spec's step size, clipping norm and public expected batch,
    and the plan's noise multiplier, Poisson sampling rate and steps."""

    learning_rate: float
    max_grad_norm: float
    batch_size: int
    noise_multiplier: float
    sample_rate: float
    steps: int


PerSampleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(outputs, targets) -> one loss per row (a `reduction="none"` torch loss)."""


def dp_sgd_round(
    model: nn.Module,
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.float32],
    settings: SgdSettings,
    loss_fn: PerSampleLoss,
    *,
    offset: npt.NDArray[np.float32] | None = None,
    slots: int | None = None,
    deadline_s: float | None = None,
) -> RoundResult:
    """Run exactly `settings.steps` DP-SGD steps (Poisson sampling, per-sample clipping).

    Args:
        loss_fn: The per-row loss of the model's output (plus `offset`) against `y`.
        offset: Added to the model's output per row (a log exposure); none means 0.
        slots: Rows the work is sized for, at least `len(x)` (default: `len(x)`); the
            ones past the data are phantom rows that contribute nothing.
        deadline_s: Wall-time limit in seconds; past it the round stops (`RoundTimeout`).

    Returns:
        The trained plain module (Opacus hooks removed).

    Raises:
        RoundTimeout: The round ran past `deadline_s`.
    """
    started = time.monotonic()
    rng = SecureRng()
    model.train()
    features, targets = torch.from_numpy(x), torch.from_numpy(y)
    rows = len(targets)
    shifts = torch.from_numpy(offset) if offset is not None else targets.new_zeros(rows)
    total = rows if slots is None else slots
    if total < rows or len(features) != rows or len(shifts) != rows:
        raise ValueError(f"{rows} targets, {len(features)} rows, {total} slots do not fit")
    with warnings.catch_warnings():
        # Opacus' hooks fire on inputs that need no gradient; expected, not a problem.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        # Per-sample losses are weighted and summed (phantom rows weigh 0); the optimizer
        # divides the noisy sum by the public expected batch.
        dp_model = GradSampleModule(model, batch_first=True, loss_reduction="sum")
        optimizer = SecureDPOptimizer(
            torch.optim.SGD(dp_model.parameters(), lr=settings.learning_rate),
            noise_multiplier=settings.noise_multiplier,
            max_grad_norm=settings.max_grad_norm,
            # The public expected batch: the true one would reveal the row count.
            expected_batch_size=settings.batch_size,
            loss_reduction="mean",
            rng=rng,
        )
        for _ in range(settings.steps):
            if deadline_s is not None and time.monotonic() - started > deadline_s:
                raise RoundTimeout(f"the round ran past {deadline_s:g} s")
            # Poisson sampling: every slot joins the batch independently with rate q.
            mask = rng.poisson_mask(total, settings.sample_rate)
            real = torch.from_numpy(mask[:rows])
            phantoms = int(mask[rows:].sum())
            xb = torch.cat((features[real], features.new_zeros((phantoms, features.shape[1]))))
            yb = torch.cat((targets[real], targets.new_zeros(phantoms)))
            ob = torch.cat((shifts[real], shifts.new_zeros(phantoms)))
            weight = torch.cat((targets.new_ones(int(real.sum())), targets.new_zeros(phantoms)))
            optimizer.zero_grad(set_to_none=True)
            outputs = dp_model(xb).squeeze(-1) + ob
            # An empty batch still takes a (pure-noise) step, as the accounting assumes;
            # its zero loss gives Opacus empty per-sample gradients instead of NaN.
            loss = (weight * loss_fn(outputs, yb)).sum() if len(xb) > 0 else outputs.sum() * 0.0
            loss.backward()
            optimizer.step()
    trained: nn.Module = dp_model._module
    # Drop Opacus hooks and per-sample buffers so the module is a plain model again.
    dp_model.remove_hooks()
    for p in trained.parameters():
        setattr(p, "grad_sample", None)  # noqa: B010 - attribute Opacus added
    return RoundResult(trained, settings.steps)
