"""Attack: reconstruct the node's noise stream and subtract it.

`torch.manual_seed` keeps only the low 32 bits of its seed for CPU draws, so DP-SGD noise
seeded through it came from one of 2^32 streams - a search any coordinator can run. The
node now draws every bit of DP noise and every Poisson mask from ChaCha20 keyed with 256
bits from the OS; statistics use OpenDP's exact discrete Gaussian sampler.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from clients.kinds.risk.plan import plan_dp
from clients.kinds.risk.trainer import train_round
from clients.secure_noise import SecureRng, discrete_gaussian
from vocab.jobspec import parse_job_spec
from vocab.models import build_model, get_weights


def test_torch_seeds_that_agree_in_their_low_32_bits_give_the_same_noise() -> None:
    # The attack the old seeding was open to, shown on torch itself.
    torch.manual_seed(5)
    first = torch.randn(8)
    torch.manual_seed(5 + 2**32)
    assert torch.equal(first, torch.randn(8))


def test_keys_that_agree_in_their_low_32_bits_give_different_noise() -> None:
    low = bytes(range(4))
    a = SecureRng(low + bytes(28))
    b = SecureRng(low + bytes(27) + b"\x01")
    assert not np.array_equal(a.gaussian((64,), 1.0), b.gaussian((64,), 1.0))
    # And two generators made by the node never share a key.
    assert not np.array_equal(SecureRng().uniform(64), SecureRng().uniform(64))


def test_dp_sgd_noise_does_not_come_from_torchs_generator() -> None:
    spec = parse_job_spec(
        {
            "job": {"name": "n", "target": "y", "positive": "1", "rounds": 1,
                    "local_epochs": 1, "batch_size": 200, "epsilon": 1.0},
            "features": {"a": {"lower": -1.0, "upper": 1.0}},
        }
    )  # fmt: skip
    x = np.linspace(-1, 1, 200, dtype=np.float32).reshape(-1, 1)
    y = (x[:, 0] > 0).astype(np.float32)
    plan = plan_dp(spec, 200)  # rate 1: every batch holds every row, only the noise differs
    runs = []
    for _ in range(2):
        torch.manual_seed(0)  # a coordinator that knew torch's state learns nothing
        runs.append(get_weights(train_round(build_model(spec), x, y, plan).model))
    assert not np.allclose(runs[0][0], runs[1][0])


def test_secure_gaussian_passes_a_distribution_test() -> None:
    draws = SecureRng().gaussian((20_000,), 3.0)
    assert stats.kstest(draws, "norm", args=(0.0, 3.0)).pvalue > 1e-4
    uniforms = SecureRng().uniform(20_000)
    assert stats.kstest(uniforms, "uniform").pvalue > 1e-4
    mask = SecureRng().poisson_mask(20_000, 0.1)
    assert abs(mask.mean() - 0.1) < 5 * np.sqrt(0.1 * 0.9 / 20_000)


def test_discrete_gaussian_has_the_charged_scale() -> None:
    scale = 4.0
    noise = np.array(discrete_gaussian([0] * 20_000, scale))
    assert noise.dtype.kind == "i"
    assert abs(noise.mean()) < 5 * scale / np.sqrt(20_000)
    # A discrete Gaussian of scale 4 has a variance within 1e-6 of 16.
    assert noise.var() == pytest.approx(scale**2, rel=0.05)
    # Its shape: compare binned frequencies with the continuous density (chi-square).
    edges = np.arange(-12.5, 13.5, 1.0)
    observed, _ = np.histogram(noise, bins=edges)
    expected = np.diff(stats.norm.cdf(edges, scale=scale)) * len(noise)
    expected *= observed.sum() / expected.sum()
    assert stats.chisquare(observed, expected).pvalue > 1e-4
