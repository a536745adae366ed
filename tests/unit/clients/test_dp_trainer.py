"""DP-SGD at the node: the plan fits the job's epsilon, and a round takes exactly its steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clients.kinds.risk.plan import plan_dp
from clients.kinds.risk.trainer import evaluate, train_round
from clients.training.bookkeeping import BookKeeping
from clients.training.dp_sgd import RoundTimeout, SgdSettings, clipper_for, dp_sgd_round
from clients.training.ghost import OpacusGhost
from vocab.accounting import epsilon_spent
from vocab.jobspec import RiskJobSpec, parse_job_spec
from vocab.metrics import auc_from_histograms
from vocab.models import build_model, get_weights
from vocab.privacy import GaussianEvent


def _spec(**job: object) -> RiskJobSpec:
    base: dict[str, object] = {
        "name": "t",
        "target": "y",
        "positive": "1",
        "rounds": 3,
        "local_epochs": 1,
        "batch_size": 32,
        "epsilon": 1.0,
    }
    base.update(job)
    return parse_job_spec(
        {
            "job": base,
            "features": {"a": {"lower": -3.0, "upper": 3.0}, "b": {"lower": -3.0, "upper": 3.0}},
        }
    )


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32) / 3
    y = (x[:, 0] * 3 + rng.normal(size=n) * 0.3 > 0).astype(np.float32)
    return x, y


@pytest.mark.parametrize(("epsilon", "rounds", "n"), [(1.0, 3, 500), (0.3, 5, 2000)])
def test_planned_rounds_compose_to_at_most_the_job_epsilon(
    epsilon: float, rounds: int, n: int
) -> None:
    spec = _spec(epsilon=epsilon, rounds=rounds)
    plan = plan_dp(spec, n)
    assert plan.sample_rate == pytest.approx(32 / n)
    # Training rounds and the final evaluation together stay within the job's epsilon ...
    assert plan.evaluations == 1
    assert epsilon_spent(plan.job_events(), spec.delta) <= epsilon
    # ... and the evaluation on its own costs its declared share.
    alone = epsilon_spent([plan.evaluation_event()], spec.delta)
    assert 0.9 * spec.evaluation_share * epsilon < alone <= spec.evaluation_share * epsilon
    # Calibration is tight: 2% less training noise would overshoot.
    looser = [
        type(plan.round_event())(
            plan.noise_multiplier * 0.98, plan.sample_rate, plan.steps_per_round
        )
    ] * rounds
    looser_job = [*looser, GaussianEvent(plan.evaluation_noise)]
    assert epsilon_spent(looser_job, spec.delta) > epsilon


def test_without_evaluation_the_whole_epsilon_trains() -> None:
    spec = _spec(evaluation="off")
    plan = plan_dp(spec, 500)
    assert plan.evaluations == 0 and plan.job_events() == plan.events_for(spec.rounds)
    with_eval = plan_dp(_spec(), 500)
    assert plan.noise_multiplier < with_eval.noise_multiplier


def test_round_takes_exactly_the_planned_steps_even_with_empty_batches() -> None:
    spec = _spec(batch_size=1, local_epochs=1, rounds=1, epsilon=8.0)
    x, y = _data(25)
    plan = plan_dp(spec, len(x))  # q = 0.04: many Poisson batches are empty
    model = build_model(spec)
    before = get_weights(model)
    result = train_round(model, x, y, plan)
    assert result.steps == plan.steps_per_round == 25
    after = get_weights(result.model)
    assert all(np.all(np.isfinite(w)) for w in after)
    assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))


def test_training_reduces_loss_at_generous_epsilon() -> None:
    spec = _spec(epsilon=50.0, rounds=1, local_epochs=5, learning_rate=2.0)
    x, y = _data(1000)
    model = build_model(spec)
    thresholds = (0.1, 0.3, 0.5, 0.7, 0.9)
    start = evaluate(model, x, y, thresholds)
    trained = train_round(model, x, y, plan_dp(spec, len(x))).model
    end = evaluate(trained, x, y, thresholds)
    assert auc_from_histograms(end.pos, end.neg) > max(
        0.85, auc_from_histograms(start.pos, start.neg)
    )
    assert sum(end.cells()) == len(y)  # exact here: the caller noises it


def test_a_round_past_its_wall_time_stops() -> None:
    spec = _spec(batch_size=1, local_epochs=50, rounds=1, epsilon=8.0)
    x, y = _data(200)
    with pytest.raises(RoundTimeout):
        train_round(build_model(spec), x, y, plan_dp(spec, len(x)), deadline_s=0.0)


def test_rows_with_non_finite_gradients_add_nothing_instead_of_poisoning_the_round() -> None:
    # A row whose activations overflow (as crafted weights could make them): its
    # per-sample gradient is not finite.
    spec = _spec(model="mlp", hidden=4, epsilon=8.0, rounds=1, local_epochs=1, batch_size=64)
    x, y = _data(300)
    x[::10] = np.inf  # every batch holds some
    model = build_model(spec)
    result = train_round(model, x, y, plan_dp(spec, len(x)))
    assert all(np.all(np.isfinite(w)) for w in get_weights(result.model))


def _reference_clipped_step(
    model: torch.nn.Module, x: np.ndarray, y: np.ndarray, clip: float, lr: float, batch: int
) -> list[np.ndarray]:
    """One noiseless DP-SGD step by the definition: each finite row's own gradient,
    clipped to `clip`, summed, divided by the expected batch (rows one at a time)."""
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="sum")
    for i in range(len(y)):
        model.zero_grad()
        loss = loss_fn(
            model(torch.from_numpy(x[i : i + 1])).squeeze(-1), torch.from_numpy(y[i : i + 1])
        )
        loss.backward()
        grads = [p.grad.detach().clone() for p in params]  # type: ignore[union-attr]
        norm = torch.sqrt(torch.stack([(g * g).sum() for g in grads]).sum())
        if not torch.isfinite(norm):
            continue  # such a row contributes nothing
        factor = min(1.0, clip / (float(norm) + 1e-6))
        total = [t + factor * g for t, g in zip(total, grads, strict=True)]
    return [(p - lr * t / batch).detach().numpy() for p, t in zip(params, total, strict=True)]


def _model(kind: str) -> torch.nn.Module:
    """logistic and mlp: the node's models (book-keeping clipping); layernorm: a module
    only Opacus' ghost clipping handles."""
    if kind != "layernorm":
        return build_model(_spec(model=kind, hidden=5), seed=1)
    torch.manual_seed(1)
    return torch.nn.Sequential(
        torch.nn.Linear(2, 5), torch.nn.LayerNorm(5), torch.nn.ReLU(), torch.nn.Linear(5, 1)
    )


@pytest.mark.parametrize(
    ("model_kind", "engine"),
    [("logistic", BookKeeping), ("mlp", BookKeeping), ("layernorm", OpacusGhost)],
)
def test_a_noiseless_step_equals_per_row_clipping_by_the_definition(
    model_kind: str, engine: type
) -> None:
    # Sampling rate 1 (every row in the batch) and sigma 0: the step is deterministic, so
    # the clipped sum must equal the one computed row by row, including a row whose
    # gradient is not finite (dropped) and phantom rows (nothing), on either engine.
    x, y = _data(40, seed=3)
    x[7] = np.inf
    model = _model(model_kind)
    assert isinstance(clipper_for(_model(model_kind), 0.05), engine)
    start = [p.detach().numpy().copy() for p in model.parameters()]
    settings = SgdSettings(learning_rate=0.7, max_grad_norm=0.05, batch_size=40,
                           noise_multiplier=0.0, sample_rate=1.0, steps=1)  # fmt: skip
    loss = torch.nn.BCEWithLogitsLoss(reduction="none")
    trained = dp_sgd_round(model, x, y, settings, loss, slots=55).model
    reference_model = _model(model_kind)
    expected = _reference_clipped_step(reference_model, x, y, 0.05, 0.7, 40)
    got = [p.detach().numpy() for p in trained.parameters()]
    for g, want in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-6)
    # The clipping bound mattered: some rows' gradients were larger than 0.05.
    assert any(not np.allclose(a, b, atol=1e-6) for a, b in zip(start, got, strict=True))
    # Nothing of Opacus is left on the model.
    assert not any(
        hasattr(p, "grad_sample") or hasattr(p, "_norm_sample") for p in trained.parameters()
    )
