"""DP-SGD at the node: the plan fits the job's epsilon, and a round takes exactly its steps."""

from __future__ import annotations

import numpy as np
import pytest

from clients.dp_trainer import evaluate, plan_dp, train_round
from vocab.accounting import epsilon_spent
from vocab.jobspec import RiskJobSpec, parse_job_spec
from vocab.models import build_model, get_weights


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
    spent = epsilon_spent(plan.events_for(rounds), spec.delta)
    assert spent <= epsilon
    # Calibration is tight: 2% less noise would overshoot.
    looser = [
        type(plan.round_event())(
            plan.noise_multiplier * 0.98, plan.sample_rate, plan.steps_per_round
        )
    ] * rounds
    assert epsilon_spent(looser, spec.delta) > epsilon


def test_round_takes_exactly_the_planned_steps_even_with_empty_batches() -> None:
    spec = _spec(batch_size=1, local_epochs=1, rounds=1, epsilon=8.0)
    x, y = _data(25)
    plan = plan_dp(spec, len(x))  # q = 0.04: many Poisson batches are empty
    model = build_model(spec)
    before = get_weights(model)
    result = train_round(model, x, y, spec, plan)
    assert result.steps == plan.steps_per_round == 25
    after = get_weights(result.model)
    assert all(np.all(np.isfinite(w)) for w in after)
    assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))


def test_training_reduces_loss_at_generous_epsilon() -> None:
    spec = _spec(epsilon=50.0, rounds=1, local_epochs=5, learning_rate=2.0)
    x, y = _data(1000)
    model = build_model(spec)
    start = evaluate(model, x, y)
    trained = train_round(model, x, y, spec, plan_dp(spec, len(x))).model
    end = evaluate(trained, x, y)
    assert end.loss < start.loss
    assert end.auc > 0.9
