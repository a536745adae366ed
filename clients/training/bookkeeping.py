"""Per-row clipping in one backward pass, for the node's models: chains of `nn.Linear`
layers and elementwise activations (logistic, MLP, the Poisson GLM).

For a linear layer z = a W^T + b, row i's gradient is g_i a_i^T for the weight and g_i for
the bias, where a_i is the row's input to the layer and g_i = dL_i/dz_i the gradient at its
output. From the layer's inputs A and output gradients G, then:

* row i's squared gradient norm is ||g_i||^2 (||a_i||^2 + 1), no per-row gradient built
  (Goodfellow 2015, "Efficient Per-Example Gradient Computations"; the "ghost norm" of Li
  et al. 2022, which Opacus' `compute_linear_norm_sample` computes too);
* the sum of the rows' gradients clipped by factors c_i is (c * G)^T A: one matrix product
  per layer, the work of the plain weight gradient.

One forward pass keeps each layer's A, and one backward pass asked for the layer outputs'
gradients G only (no parameter gradient) gives the G: Bu et al. 2023, "Differentially
Private Optimization on Large Model at Small Cost" (book-keeping). Opacus' ghost clipping
gets the same sum with a second backward pass of the reweighted loss; for these models that
pass was the larger part of a step's cost (`python -m bench.round_cost`). Both are checked
equal to clipping row by row by the definition (`tests/unit/clients/test_dp_trainer.py`)
and to each other (`tests/unit/clients/test_bookkeeping.py`). Any other module trains
through Opacus (`clients.training.ghost`).

A row whose loss or gradient norm is not finite (crafted weights can overflow its
activations) gets factor 0 and its G and hidden-layer A rows are zeroed, so it adds exactly
nothing and every other row stays within the clipping norm; the work is the same either
way. A row with a non-finite feature comes zeroed and weightless already (`Batch`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.functional import linear

from clients.training.batches import Batch, PerSampleLoss

__all__ = ["BookKeeping", "supports"]

# Row-wise elementwise maps (row i's output depends on row i's input only), as functions.
_ACTIVATIONS: dict[type[nn.Module], Callable[[torch.Tensor], torch.Tensor]] = {
    nn.ReLU: torch.relu,
    nn.Tanh: torch.tanh,
    nn.Sigmoid: torch.sigmoid,
    nn.Identity: lambda h: h,
}


class _Dense(NamedTuple):
    weight: torch.Tensor
    bias: torch.Tensor | None


def _layers(model: nn.Module) -> list[nn.Module]:
    return list(model) if type(model) is nn.Sequential else [model]


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks)  # fmt: skip


def supports(model: nn.Module) -> bool:
    """Whether `model` is a chain of `nn.Linear` layers and elementwise activations that
    book-keeping handles: a plain `nn.Sequential` (a subclass may have its own forward)
    or one layer, each module once, the linear layers' own weights and biases its only
    parameters (a parametrised or shared weight would need other rules), and no hooks
    (the chain is computed from the layers' functions, so a hook would not run)."""
    layers = _layers(model)
    linears = [m for m in layers if type(m) is nn.Linear]
    own = [p for m in linears for p in (m.weight, m.bias) if p is not None]
    # An in-place activation would overwrite the layer output whose gradient is asked for.
    chain = all(
        type(m) is nn.Linear or (type(m) in _ACTIVATIONS and not getattr(m, "inplace", False))
        for m in layers
    )
    return (
        chain
        and bool(linears)
        and len({id(m) for m in layers}) == len(layers)
        and not any(_hooked(m) for m in (model, *layers))
        and all(isinstance(p, nn.Parameter) for p in own)
        and [id(p) for p in model.parameters()] == [id(p) for p in own]
    )


class BookKeeping:
    """Clipped gradient sums of a supported model (`supports`), each row's gradient
    clipped to norm `max_grad_norm`, left in each `p.grad`.

    Raises:
        ValueError: The model is not a supported chain.
    """

    def __init__(self, model: nn.Module, max_grad_norm: float) -> None:
        if not supports(model):
            raise ValueError(f"book-keeping clipping does not handle {type(model).__name__}")
        self.module = model
        self._max_grad_norm = max_grad_norm
        # The chain as plain functions and parameters: module calls and attribute lookups
        # cost as much as the arithmetic at a step's sizes.
        self._chain: list[_Dense | Callable[[torch.Tensor], torch.Tensor]] = [
            _Dense(m.weight, m.bias) if type(m) is nn.Linear else _ACTIVATIONS[type(m)]
            for m in _layers(model)
        ]
        self._dense = [step for step in self._chain if isinstance(step, _Dense)]

    def parameters(self) -> list[nn.Parameter]:
        return list(self.module.parameters())

    def release(self) -> nn.Module:
        """The plain trained module (nothing was attached to it)."""
        return self.module

    def clipped_sum(self, batch: Batch, loss_fn: PerSampleLoss) -> None:
        """Set each parameter's `grad` to the sum over the batch's rows of their clipped
        gradients (rows not finite: nothing).

        `batch` comes from `PoissonBatches` or `Batch.of`: its features finite and their
        squared norms right, which the norms here rely on.
        """
        inputs: list[torch.Tensor] = []
        outputs: list[torch.Tensor] = []
        h = batch.features
        for step in self._chain:
            if isinstance(step, _Dense):
                inputs.append(h.detach() if h.requires_grad else h)
                h = linear(h, step.weight, step.bias)
                outputs.append(h)
            else:
                h = step(h)
        losses = batch.unweighted_losses(h, loss_fn)
        # The gradients of the weighted sum: the weights seed the backward pass.
        grads = torch.autograd.grad(losses, outputs, batch.weights)
        # 0, or NaN for a row whose loss is not finite: that row's factor becomes 0 below.
        squared = losses.detach() * 0.0
        for dense, a, g in zip(self._dense, inputs, grads, strict=True):
            g_squared = torch.linalg.vecdot(g, g)
            # The batch's features come with their squared norms (and are finite).
            a_squared = batch.feature_norms if a is batch.features else torch.linalg.vecdot(a, a)
            squared.addcmul_(g_squared, a_squared)
            if dense.bias is not None:
                squared.add_(g_squared)
        # Opacus' factor min(1, C / (norm + 1e-6)): 0 for an infinite norm, and a NaN one
        # (a NaN loss or gradient) stays NaN through the clamp and becomes 0.
        clip = squared.sqrt_().add_(1e-6).reciprocal_().mul_(self._max_grad_norm)
        factors = clip.clamp_(max=1.0).nan_to_num_(0.0)[:, None]
        for dense, a, g in zip(self._dense, inputs, grads, strict=True):
            # A dropped row's factor is 0; zeroing its non-finite entries keeps 0 * inf out.
            scaled = (g * factors).nan_to_num_(0.0, 0.0, 0.0)
            finite_a = a if a is batch.features else a.nan_to_num(0.0, 0.0, 0.0)
            dense.weight.grad = torch.mm(scaled.T, finite_a)
            if dense.bias is not None:
                dense.bias.grad = scaled.sum(0)
