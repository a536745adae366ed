"""Feature encoding uses declared bounds only; pooled histogram AUC tracks the exact AUC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vocab.features import encode_features, encode_target
from vocab.jobspec import parse_job_spec
from vocab.metrics import roc_auc, summarize


def _spec() -> object:
    return parse_job_spec(
        {
            "job": {"name": "j", "target": "y", "positive": "Bad"},
            "features": {
                "x": {"lower": 0.0, "upper": 10.0},
                "inc": {"lower": 0.0, "upper": 1e6, "log": True},
                "c": {"categories": ["a", "b"]},
            },
        }
    )


def test_encoding_clips_scales_and_one_hots() -> None:
    spec = _spec()
    frame = pd.DataFrame(
        {
            "x": [-5.0, 5.0, 20.0],
            "inc": [0.0, 1e6, 5e7],
            "c": ["a", "b", "zzz"],
            "y": ["bad", "good", "BAD "],
        }
    )
    x = encode_features(frame, spec)  # type: ignore[arg-type]
    assert x.shape == (3, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(x[:, 1], [-1.0, 1.0, 1.0], atol=1e-6)
    np.testing.assert_array_equal(x[:, 2:], [[1, 0], [0, 1], [0, 0]])
    np.testing.assert_array_equal(encode_target(frame, spec), [1.0, 0.0, 1.0])  # type: ignore[arg-type]


def test_exact_auc_known_values() -> None:
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert roc_auc([0.5, 0.5], [0, 1]) == pytest.approx(0.5)


def test_histogram_auc_close_to_exact_and_merge_is_additive() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(4000) < 0.1
    z = rng.normal(size=4000) + 1.2 * y - 2.5
    whole = summarize(z, y)
    parts = summarize(z[:1000], y[:1000]).merge(summarize(z[1000:], y[1000:]))
    assert parts == whole
    assert abs(whole.auc - roc_auc(z, y)) < 2e-3
    assert whole.n == 4000 and 0 < whole.accuracy <= 1
