"""Book-keeping clipping gives Opacus' ghost clipping's sums, and Poisson batches over slots."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from clients.secure_noise import SecureRng
from clients.training.batches import Batch, PerSampleLoss, PoissonBatches
from clients.training.bookkeeping import BookKeeping, supports
from clients.training.dp_sgd import SecureDPOptimizer
from clients.training.draws import DrawsAhead
from clients.training.ghost import OpacusGhost

LOGISTIC = nn.BCEWithLogitsLoss(reduction="none")
POISSON = nn.PoissonNLLLoss(log_input=True, full=False, reduction="none")


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1))


def _batch(rows: int, phantoms: int, *, counts: bool = False, inf_row: int | None = None) -> Batch:
    gen = torch.Generator().manual_seed(rows)
    features = torch.randn(rows, 6, generator=gen) * 2
    if inf_row is not None:
        features[inf_row] = torch.inf
    targets = torch.poisson(torch.full((rows,), 2.0), generator=gen) if counts else (
        torch.rand(rows, generator=gen) < 0.4).float()  # fmt: skip
    offsets = torch.randn(rows, generator=gen) * 0.1 if counts else torch.zeros(rows)
    pad = torch.zeros(phantoms)
    return Batch.of(
        torch.cat((features, torch.zeros(phantoms, 6))), torch.cat((targets, pad)),
        torch.cat((offsets, pad)), torch.cat((torch.ones(rows), pad)),
    )  # fmt: skip


def _identity_sigmoid() -> nn.Module:
    return nn.Sequential(nn.Identity(), nn.Linear(6, 8), nn.Sigmoid(), nn.Linear(8, 1))


MODELS: dict[str, tuple[Callable[[], nn.Module], PerSampleLoss, bool]] = {
    "logistic": (lambda: nn.Sequential(nn.Linear(6, 1)), LOGISTIC, False),
    "mlp": (_mlp, LOGISTIC, False),
    "poisson": (lambda: nn.Linear(6, 1, bias=False), POISSON, True),
    "tanh": (lambda: nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1)), LOGISTIC, False),
    "identity-sigmoid": (_identity_sigmoid, LOGISTIC, False),
}


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("clip", [0.05, 100.0])  # most rows clipped; none clipped
def test_the_clipped_sum_is_opacus_ghost_clippings(kind: str, clip: float) -> None:
    make, loss, counts = MODELS[kind]
    torch.manual_seed(4)
    ours = make()
    theirs = make()
    theirs.load_state_dict(ours.state_dict())
    batch = _batch(50, 9, counts=counts, inf_row=3)  # zeroed, weightless: nothing from it
    BookKeeping(ours, clip).clipped_sum(batch, loss)
    OpacusGhost(theirs, clip).clipped_sum(batch, loss)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None
        assert torch.isfinite(a.grad).all()
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)


def test_rows_whose_hidden_activations_overflow_are_dropped_as_opacus_drops_them() -> None:
    torch.manual_seed(6)
    ours, theirs = _mlp(), _mlp()
    with torch.no_grad():  # crafted weights: rows with a large first feature overflow
        ours[0].weight[:, 0] = 3e38
    theirs.load_state_dict(ours.state_dict())
    batch = _batch(40, 5)
    with torch.no_grad():
        overflowing = ours[1](ours[0](batch.features)).isinf().any(dim=1)
    assert 0 < int(overflowing.sum()) < 40
    BookKeeping(ours, 0.5).clipped_sum(batch, LOGISTIC)
    OpacusGhost(theirs, 0.5).clipped_sum(batch, LOGISTIC)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None and torch.isfinite(a.grad).all()
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
    assert any(p.grad is not None and p.grad.any() for p in ours.parameters())


def test_a_row_with_a_non_finite_feature_is_zeroed_and_weightless() -> None:
    batch = _batch(5, 0, inf_row=2)
    assert torch.isfinite(batch.features).all() and not batch.features[2].any()
    assert batch.weights.tolist() == [1.0, 1.0, 0.0, 1.0, 1.0]
    torch.testing.assert_close(batch.feature_norms, (batch.features**2).sum(1))


def test_each_row_contributes_at_most_the_clipping_norm() -> None:
    torch.manual_seed(0)
    model = _mlp()
    row = _batch(1, 0)
    with torch.no_grad():  # the wrong label for the model's guess: a large gradient
        wrong = (model(row.features * 20).squeeze(-1) < 0).float()
    batch = Batch.of(row.features * 20, wrong, row.offsets, row.weights)

    def norm(clip: float) -> float:
        model.zero_grad(set_to_none=True)
        BookKeeping(model, clip).clipped_sum(batch, LOGISTIC)
        return float(torch.sqrt(sum((p.grad**2).sum() for p in model.parameters())))

    assert norm(1e9) > 3.0
    assert norm(0.3) == pytest.approx(0.3, rel=1e-4)


def test_an_empty_batch_leaves_zero_gradients() -> None:
    model = _mlp()
    BookKeeping(model, 1.0).clipped_sum(_batch(0, 0), LOGISTIC)
    for p in model.parameters():
        assert p.grad is not None and p.grad.shape == p.shape and not p.grad.any()


def test_phantom_rows_add_exactly_nothing() -> None:
    torch.manual_seed(2)
    with_phantoms, without = _mlp(), _mlp()
    without.load_state_dict(with_phantoms.state_dict())
    BookKeeping(with_phantoms, 0.1).clipped_sum(_batch(30, 40), LOGISTIC)
    BookKeeping(without, 0.1).clipped_sum(_batch(30, 0), LOGISTIC)
    for a, b in zip(with_phantoms.parameters(), without.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-6, atol=1e-8)


def _shared() -> nn.Module:
    layer = nn.Linear(3, 3)
    return nn.Sequential(layer, nn.Tanh(), layer)


def _tied() -> nn.Module:
    first, second = nn.Linear(3, 3), nn.Linear(3, 3)
    second.weight = first.weight
    return nn.Sequential(first, nn.Tanh(), second)


def _hooked(where: str) -> nn.Module:
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    module = model if where == "model" else model[1]
    module.register_forward_hook(lambda _m, _a, out: out * 2)
    return model


class _Custom(nn.Sequential):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x * 2)


@pytest.mark.parametrize(
    ("model", "handled"),
    [
        (nn.Linear(3, 1, bias=False), True),
        (nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)), True),
        (nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 1)), False),
        (nn.Sequential(nn.ReLU()), False),  # no linear layer: nothing to clip
        (_shared(), False),  # one layer used twice: its gradient has two parts
        (_tied(), False),  # two layers, one weight
        (_Custom(nn.Linear(3, 1)), False),  # a Sequential with its own forward
        (torch.nn.utils.parametrizations.weight_norm(nn.Linear(3, 1)), False),
        (nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=True), nn.Linear(4, 1)), False),
        (nn.Sequential(nn.Sequential(nn.Linear(3, 1))), False),  # nested: not a plain chain
        (_hooked("model"), False),  # book-keeping calls the layers' functions: no hook runs
        (_hooked("layer"), False),
    ],
)
def test_only_chains_of_linear_layers_and_elementwise_maps_are_handled(
    model: nn.Module, handled: bool
) -> None:
    assert supports(model) is handled
    if not handled:
        with pytest.raises(ValueError, match="does not handle"):
            BookKeeping(model, 1.0)


def test_poisson_batches_hold_real_rows_then_weightless_phantoms() -> None:
    features = torch.arange(20, dtype=torch.float32).reshape(10, 2) + 1
    targets, offsets = torch.ones(10), torch.full((10,), 0.5)
    batch = PoissonBatches(features, targets, offsets, 25, rate=1.0, steps=1,
                           rng=SecureRng()).draw()  # fmt: skip
    assert len(batch.targets) == 25  # rate 1: every slot
    torch.testing.assert_close(batch.features[:10], features)
    assert batch.weights[:10].eq(1).all() and batch.offsets[:10].eq(0.5).all()
    for column in (batch.features[10:], batch.targets[10:], batch.weights[10:]):
        assert not column.any()
    # Drawn ahead, and on past the planned steps: every batch a fresh Poisson sample.
    batches = PoissonBatches(features, targets, offsets, 2000, rate=0.1, steps=3,
                             rng=SecureRng())  # fmt: skip
    draws = [batches.draw() for _ in range(20)]
    sizes = [len(b.targets) for b in draws]
    assert len(set(sizes)) > 1
    assert abs(np.mean(sizes) - 200) < 5 * np.sqrt(2000 * 0.1 * 0.9 / 20)


def test_more_rows_than_slots_is_refused() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        PoissonBatches(torch.zeros(5, 2), torch.zeros(5), torch.zeros(5), 4, rate=0.5,
                       steps=1, rng=SecureRng())  # fmt: skip


def test_draws_ahead_are_fresh_for_every_step_and_bounded_in_size() -> None:
    calls: list[int] = []

    def draw(k: int) -> list[bytes]:
        calls.append(k)
        return [SecureRng().bytes(16) for _ in range(k)]

    ahead = DrawsAhead(draw, 4, steps=3)
    drawn = [ahead.next() for _ in range(5)]
    assert calls == [3, 3]  # three steps per call, and more when asked for
    assert len(set(drawn)) == 5
    wide = DrawsAhead(draw, 100_000, steps=30)  # about 260,000 values at most per call
    wide.next()
    assert calls[-1] == 2


@pytest.mark.parametrize("rate", [0.0, 1e-9, 0.1, 1 / 3, 1 - 2**-53, 1.0])
def test_the_poisson_mask_is_a_uniform_below_the_rate(rate: float) -> None:
    # The integer comparison is the float one exactly, on the same stream.
    key = bytes(range(32))
    mask = SecureRng(key).poisson_mask(50_000, rate)
    assert np.array_equal(mask, SecureRng(key).uniform(50_000) < rate)


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan")])
def test_a_rate_outside_zero_one_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="sampling rate"):
        SecureRng().poisson_mask(10, rate)


def test_the_optimizer_adds_noise_of_std_sigma_c_over_the_expected_batch() -> None:
    # Zero clipped sums: a step of lr 1 moves each weight by noise / B, N(0, (sigma C / B)^2).
    weights = nn.Parameter(torch.zeros(200, 500))
    optimizer = SecureDPOptimizer(
        torch.optim.SGD([weights], lr=1.0), noise_multiplier=1.5, max_grad_norm=0.4,
        expected_batch_size=8, loss_reduction="mean", rng=SecureRng(), steps=2,
    )  # fmt: skip
    moves = []
    for _ in range(2):
        before = weights.detach().clone()
        optimizer.zero_grad(set_to_none=True)
        weights.grad = torch.zeros_like(weights)
        optimizer.step()
        moves.append((weights.detach() - before).flatten().numpy())
    for move in moves:
        assert stats.kstest(move, "norm", args=(0.0, 1.5 * 0.4 / 8)).pvalue > 1e-4
    assert not np.allclose(moves[0], moves[1])  # fresh noise every step


def test_a_step_without_zero_grad_is_refused_as_opacus_refuses_it() -> None:
    # Otherwise the second step would add every row's clipped gradient twice.
    weights = nn.Parameter(torch.zeros(3))
    optimizer = SecureDPOptimizer(
        torch.optim.SGD([weights], lr=1.0), noise_multiplier=1.0, max_grad_norm=1.0,
        expected_batch_size=4, loss_reduction="mean", rng=SecureRng(), steps=2,
    )  # fmt: skip
    optimizer.zero_grad(set_to_none=True)
    weights.grad = torch.ones(3)
    optimizer.step()
    weights.grad = torch.ones(3)
    with pytest.raises(ValueError, match="haven't been cleared"):
        optimizer.step()
