"""A spec that leaves DP-SGD values unset: each node chooses them from public figures only."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clients.kinds.risk.plan import plan_dp
from clients.kinds.risk.trainer import train_round
from clients.training.defaults import CLIP, LOCAL_EPOCHS, MAX_BATCH, MAX_STEP, NOISE_WALK
from vocab.accounting import epsilon_spent
from vocab.jobspec import ModelKind, RiskJobSpec, parse_job_spec
from vocab.metrics import roc_auc
from vocab.models import build_model
from vocab.serde import job_from_bytes, job_to_bytes

FEATURES = {"a": {"lower": -3.0, "upper": 3.0}, "b": {"categories": ["u", "v"]}}


def _untuned(**job: object) -> RiskJobSpec:
    base: dict[str, object] = {"name": "t", "target": "y", "positive": "1", "epsilon": 1.0}
    base.update(job)
    return parse_job_spec({"job": base, "features": FEATURES})


def test_an_untuned_spec_leaves_the_values_unset_and_they_cross_the_wire_unset() -> None:
    spec = _untuned()
    assert (spec.local_epochs, spec.batch_size, spec.learning_rate, spec.max_grad_norm) == (
        None, None, None, None,
    )  # fmt: skip
    assert job_from_bytes(job_to_bytes(spec)) == spec
    tuned = _untuned(local_epochs=2, batch_size=64, learning_rate=0.5, max_grad_norm=1.0)
    assert job_from_bytes(job_to_bytes(tuned)) == tuned


def test_defaults_follow_the_rules_from_public_figures() -> None:
    spec = _untuned(rounds=3, min_nodes=4)
    plan = plan_dp(spec, 5000)
    chosen = plan.training
    assert chosen.batch_size == 500 and chosen.local_epochs == LOCAL_EPOCHS
    assert chosen.max_grad_norm == CLIP
    assert plan.sample_rate == pytest.approx(0.1) and plan.steps_per_round == 30
    # The learning rate bounds the noise's walk over the job's steps (averaged over 4
    # departments), or the largest step, whichever is smaller.
    steps = plan.steps_per_round * spec.rounds
    walk = NOISE_WALK[spec.model] * 2 * 500 / (plan.noise_multiplier * CLIP * math.sqrt(steps))
    assert chosen.learning_rate == pytest.approx(min(walk, MAX_STEP / CLIP))
    # The job still costs at most its epsilon, whatever was chosen.
    assert epsilon_spent(plan.job_events(), spec.delta) <= spec.epsilon


def test_more_noise_means_smaller_steps_and_the_cap_holds_with_little() -> None:
    small, large = plan_dp(_untuned(epsilon=0.2), 2000), plan_dp(_untuned(epsilon=0.2), 200_000)
    assert small.noise_multiplier > 0
    assert small.training.learning_rate < large.training.learning_rate
    assert large.training.learning_rate == pytest.approx(MAX_STEP / CLIP)
    # A huge table still gets a batch whose per-sample gradients fit in memory.
    assert plan_dp(_untuned(), 10_000_000).training.batch_size == MAX_BATCH
    # The MLP's steps are bounded the same way, by its own (shorter) walk.
    mlp = plan_dp(_untuned(model="mlp", epsilon=0.2), 2000)
    ratio = NOISE_WALK[ModelKind.MLP] / NOISE_WALK[ModelKind.LOGISTIC]
    assert mlp.training.learning_rate == pytest.approx(small.training.learning_rate * ratio)


def test_more_departments_averaged_allow_larger_steps() -> None:
    two = plan_dp(_untuned(min_nodes=2), 3000).training.learning_rate
    eight = plan_dp(_untuned(min_nodes=8), 3000).training.learning_rate
    assert eight == pytest.approx(2 * two) or eight == MAX_STEP / CLIP


def test_values_the_spec_sets_win_over_the_defaults() -> None:
    spec = _untuned(batch_size=64, local_epochs=1, learning_rate=0.3, max_grad_norm=2.0)
    chosen = plan_dp(spec, 5000).training
    assert (chosen.batch_size, chosen.local_epochs, chosen.learning_rate, chosen.max_grad_norm) == (
        64, 1, 0.3, 2.0,
    )  # fmt: skip
    # Setting the clipping norm alone rescales the default rate to the same largest step.
    clip_only = plan_dp(_untuned(max_grad_norm=1.0, epsilon=50.0), 100_000).training
    assert clip_only.learning_rate * 1.0 == pytest.approx(MAX_STEP)


def test_an_untuned_round_learns_a_plain_signal() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    a = rng.uniform(-1, 1, size=n).astype(np.float32)
    y = (a + rng.normal(scale=0.3, size=n) > 0).astype(np.float32)
    x = np.stack([a, (rng.random(n) < 0.5).astype(np.float32), np.zeros(n, np.float32)], 1)
    spec = _untuned(epsilon=1.0, rounds=1)
    model = train_round(build_model(spec, seed=0), x, y, plan_dp(spec, n)).model
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).squeeze(-1).numpy()
    assert roc_auc(logits, y) > 0.85
