"""The poisson regression's DP-SGD round at the node: encoding, training, robustness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clients.kinds.regression.poisson import (
    encode_poisson,
    poisson_model,
    train_poisson_round,
)
from clients.training.dp_sgd import RoundTimeout
from server.kinds.regression.poisson_fit import initial_weights, poisson_deviance, poisson_fit
from vocab.errors import InternalError
from vocab.jobs.regression import Family, RegressionSpec
from vocab.jobs.regression_plan import plan_poisson
from vocab.jobspec import FeatureSpec

TRUE = np.array([1.5, 0.5, 0.7])
"""log rate = 1.5 + 0.5 a + 0.7 [c = q], a in [-1, 1] (encoded = raw)."""


def _spec(**overrides: object) -> RegressionSpec:
    fields: dict[str, object] = {
        "name": "p",
        "family": Family.POISSON,
        "target": "y",
        "target_lower": 0.0,
        "target_upper": 100.0,
        "features": (FeatureSpec("a", -1.0, 1.0), FeatureSpec("c", categories=("p", "q"))),
        "rounds": 3,
        "batch_size": 256,
        "learning_rate": 0.5,
    }
    fields.update(overrides)
    return RegressionSpec(**fields)  # type: ignore[arg-type]


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, n)
    c = rng.choice(["p", "q"], n)
    mu = np.exp(TRUE[0] + TRUE[1] * a + TRUE[2] * (c == "q"))
    return pd.DataFrame({"a": a, "c": c, "y": rng.poisson(mu)})


def test_encoding_with_exposure() -> None:
    spec = _spec(exposure="days")
    frame = pd.DataFrame(
        {
            "a": [0.5, 2.0, 0.0, 0.0, 0.0],
            "c": ["q", "p", "p", "p", "x"],
            "y": [3, 500, 1, 1, 1],
            "days": [10.0, 1.0, 0.0, None, 1.0],
        }
    )
    x, y, offset = encode_poisson(frame, spec)
    assert x.dtype == y.dtype == offset.dtype == np.float32
    np.testing.assert_array_equal(x, [[1.0, 0.5, 1.0], [1.0, 1.0, 0.0]])
    np.testing.assert_array_equal(y, [3.0, 100.0])  # clipped to the declared bounds
    np.testing.assert_allclose(offset, [np.log(10.0), 0.0])
    _, _, none = encode_poisson(frame, _spec())
    assert not none.any()
    with pytest.raises(InternalError):
        encode_poisson(frame, _spec(family=Family.LINEAR, exposure=""))


def test_training_recovers_the_rates_at_epsilon_one() -> None:
    spec = _spec(epsilon=1.0)
    x, y, offset = encode_poisson(_frame(20_000), spec)
    plan = plan_poisson(spec, len(y))
    model = poisson_model(spec, initial_weights(spec)[0])
    for _ in range(spec.rounds):
        result = train_poisson_round(model, x, y, offset, spec, plan)
        assert result.steps == plan.steps_per_round
        model = result.model
    weights = model.weight.detach().numpy()
    np.testing.assert_allclose(weights.ravel(), TRUE, atol=0.15)
    fitted = poisson_deviance(weights, x, y, offset)
    null = poisson_deviance([np.log(y.mean()), 0.0, 0.0], x, y, offset)
    assert fitted < 1.1 * poisson_deviance(TRUE, x, y, offset) < null
    assert poisson_fit(spec, [weights]).names == ("intercept", "a", "c=q")


def test_overflowing_rows_contribute_nothing() -> None:
    """Weights that overflow every rate leave finite weights: those rows are dropped."""
    spec = _spec(rounds=1, local_epochs=1, batch_size=32)
    x, y, offset = encode_poisson(_frame(200), spec)
    model = poisson_model(spec, [1e4, 1e4, 1e4])
    plan = plan_poisson(spec, 200)
    trained = train_poisson_round(model, x, y, offset, spec, plan, slots=400).model
    assert np.all(np.isfinite(trained.weight.detach().numpy()))


def test_round_past_its_deadline_stops() -> None:
    spec = _spec()
    x, y, offset = encode_poisson(_frame(100), spec)
    with pytest.raises(RoundTimeout):
        train_poisson_round(
            poisson_model(spec), x, y, offset, spec, plan_poisson(spec, 100), deadline_s=-1.0
        )
    with pytest.raises(InternalError):
        train_poisson_round(
            poisson_model(spec), x, y, offset, spec, plan_poisson(spec, 100), slots=5
        )
