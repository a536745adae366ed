"""Clipped gradient sums through Opacus' ghost clipping, for any module Opacus supports
(models that are not chains of linear layers, `clients.training.bookkeeping`).

Opacus' `GradSampleModuleFastGradientClipping` (Li et al. 2022, "Large Language Models Can
Be Strong Differentially Private Learners"): a first backward pass gives each row's gradient
norm from the layers' activations and backprops without materialising per-row gradients;
a second backward pass of the loss reweighted by each row's clipping factor gives the
clipped sum. A row whose loss or norm is not finite is dropped before the second pass (the
batch goes forward again without it: a NaN would survive a zero weight).
"""

from __future__ import annotations

import warnings

import torch
from opacus.grad_sample import GradSampleModuleFastGradientClipping
from torch import nn

from clients.training.batches import Batch, PerSampleLoss

__all__ = ["OpacusGhost"]


class OpacusGhost:
    """Opacus' ghost clipping around `model`, each row's gradient clipped to norm
    `max_grad_norm`; `release` gives the plain module back."""

    def __init__(self, model: nn.Module, max_grad_norm: float) -> None:
        self._max_grad_norm = max_grad_norm
        with warnings.catch_warnings():
            # Opacus' hooks fire on inputs that need no gradient; expected, not a problem.
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            # Per-row losses are weighted and summed (phantom rows weigh 0).
            self._wrapped = GradSampleModuleFastGradientClipping(
                model, batch_first=True, loss_reduction="sum",
                max_grad_norm=max_grad_norm, use_ghost_clipping=True,
            )  # fmt: skip

    def parameters(self) -> list[nn.Parameter]:
        return list(self._wrapped.parameters())

    def release(self) -> nn.Module:
        """The trained module with Opacus' hooks and per-row buffers removed."""
        trained: nn.Module = self._wrapped._module
        self._wrapped.remove_hooks()
        for p in trained.parameters():
            for name in ("grad_sample", "_norm_sample"):  # attributes Opacus added
                if hasattr(p, name):
                    delattr(p, name)
        return trained

    def clipped_sum(self, batch: Batch, loss_fn: PerSampleLoss) -> None:
        """Set each parameter's `grad` to the sum of the batch's clipped row gradients."""
        model = self._wrapped
        if len(batch.targets) == 0:  # the step is pure noise, as the accounting assumes
            for p in model.parameters():
                p.grad = torch.zeros_like(p)
            return
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            losses = batch.row_losses(model, loss_fn)
            torch.autograd.backward(losses.sum(), retain_graph=True)
            norms = model.get_norm_sample()
            for p in model.parameters():
                p.grad = None  # the unclipped sum is not wanted
            factors = (self._max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
            model.disable_hooks()
            try:
                finite = torch.isfinite(norms) & torch.isfinite(losses)
                if not bool(finite.all()):
                    batch, factors = batch.only(finite), factors[finite]
                    losses = batch.row_losses(model, loss_fn)
                (factors.detach() * losses).sum().backward()
            finally:
                model.enable_hooks()
        for p in model.parameters():
            if p.grad is None:  # every row dropped
                p.grad = torch.zeros_like(p)
