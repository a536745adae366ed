"""Feature encoding uses declared bounds only; pooled histogram AUC tracks the exact AUC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vocab.features import encode_features, encode_target
from vocab.jobspec import parse_job_spec
from vocab.metrics import ScoreHistogram, evaluation_metrics, roc_auc, score_histogram


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


THRESHOLDS = (0.02, 0.05, 0.1, 0.2, 0.5)


def test_histogram_auc_tracks_exact_auc_and_merge_is_additive() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(4000) < 0.1
    z = rng.normal(size=4000) + 1.2 * y - 2.5
    whole = score_histogram(z, y, THRESHOLDS)
    parts = score_histogram(z[:1000], y[:1000], THRESHOLDS).merge(
        score_histogram(z[1000:], y[1000:], THRESHOLDS)
    )
    assert parts == whole
    metrics = evaluation_metrics(whole, THRESHOLDS)
    # Six coarse bins lose some ranking: the AUC is close, not equal.
    assert abs(metrics["auc"] - roc_auc(z, y)) < 0.03
    assert metrics["n_holdout"] == 4000
    assert metrics["accuracy"] == pytest.approx(np.mean((z > 0) == y))
    assert "auc_se" not in metrics  # exact counts: no noise to report


def test_noisy_histograms_report_the_noise_standard_error() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(4000) < 0.3
    z = rng.normal(size=4000) + 2.0 * y - 1.0
    exact = score_histogram(z, y, THRESHOLDS)
    sigma = 20.0
    noisy = ScoreHistogram.from_cells([int(c + rng.normal(0, sigma)) for c in exact.cells()], sigma)
    merged = noisy.merge(noisy)
    assert merged.noise_std == pytest.approx(sigma * np.sqrt(2))
    metrics = evaluation_metrics(noisy, THRESHOLDS)
    # Twelve cells with noise sd 20: the row count's standard error is about 20 * sqrt(12).
    assert metrics["n_holdout_se"] == pytest.approx(sigma * np.sqrt(12), rel=0.2)
    assert 0 < metrics["auc_se"] < 0.1
    assert (
        abs(metrics["auc"] - evaluation_metrics(exact, THRESHOLDS)["auc"]) < 4 * metrics["auc_se"]
    )
