"""Attack: use the held-out evaluation as an extraction channel.

The coordinator picks the weights and the feature bounds a node evaluates. Before, a node
answered with exact counts: a logistic model with weight 12 on a feature whose declared
bounds are a narrow window around a known person's value put that one held-out row in a
bin of its own, and its class gave away the person's label; a bias of +40 put every row in
one bin, and the negatives' count came out exact. Now every evaluation is a charged
discrete-Gaussian release of sensitivity 1: each attack below runs against the node and
recovers no more than the charged epsilon allows.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from clients.data.node_dataset import load_job_frames
from clients.kinds.risk.trainer import evaluate
from clients.ledger.sqlite_ledger import SqliteLedger
from testkit.synthetic import make_rows, write_node
from tests.adversarial.conftest import evaluate_as_coordinator
from vocab.approval import JobClaims
from vocab.features import encode_features, encode_target
from vocab.jobspec import RiskJobSpec, parse_job_spec
from vocab.metrics import score_histogram
from vocab.models import build_model, set_weights
from vocab.wire import ReplyStatus

TARGETS = 60
WEIGHT, BIAS = 12.0, -1.8  # a row at the window's centre lands in bin [0.1, 0.2) alone


def _window_spec(name: str, centre: float) -> RiskJobSpec:
    return parse_job_spec(
        {
            "job": {"name": name, "target": "y", "positive": "1", "rounds": 1,
                    "epsilon": 1.0, "min_nodes": 1},
            "features": {"x1": {"lower": centre - 0.001, "upper": centre + 0.001}},
        }
    )  # fmt: skip


def _weights() -> list[np.ndarray]:
    return [np.array([[WEIGHT]], dtype=np.float32), np.array([BIAS], dtype=np.float32)]


def _guess(pos: tuple[int, ...], neg: tuple[int, ...]) -> int:
    """The attacker's guess of the target's label from the bin that holds only the target."""
    return int(pos[3] > neg[3])


def test_a_narrow_window_no_longer_reveals_held_out_labels(tmp_path: Path) -> None:
    rows = make_rows(400, seed=11)
    # Values 0.015 apart: each window (a few 1e-5 wide) holds its target alone.
    rows["x1"] = np.random.default_rng(11).permutation(np.linspace(-3.0, 3.0, len(rows)))
    cfg = write_node(tmp_path / "tax", "tax", 500.0, rows)
    # The test (not the attacker) knows which rows are held out, and aims only at them.
    probe = _window_spec("probe", 0.0)
    _, holdout = load_job_frames(cfg, JobClaims.from_spec(probe))
    targets = holdout.sample(TARGETS, random_state=3)
    labels = encode_target(targets, probe).astype(int)

    exact_hits, noisy_hits, charged = 0, 0, []
    for i, (centre, label) in enumerate(zip(targets["x1"], labels, strict=True)):
        spec = _window_spec(f"window-{i}", float(centre))
        # What the node used to release: the exact histogram of the same query.
        model = build_model(spec)
        set_weights(model, _weights())
        exact = evaluate(
            model, encode_features(holdout, spec), encode_target(holdout, spec), spec.thresholds
        )
        exact_hits += _guess(exact.pos, exact.neg) == label
        # What it releases now.
        outcome = evaluate_as_coordinator(cfg, spec, f"window-{i}#1", _weights())
        assert outcome.report.status is ReplyStatus.OK, outcome.report.reason
        assert outcome.holdout is not None
        noisy_hits += _guess(outcome.holdout.pos, outcome.holdout.neg) == label
        (release,) = outcome.report.releases
        charged.append(release.epsilon)

    assert exact_hits == TARGETS  # the attack is real: exact counts give every label away
    # Each evaluation alone is (eps, delta)-DP: no test guesses one bit with probability
    # above e^eps / (1 + e^eps) + delta; allow three binomial standard deviations.
    eps = max(charged)
    bound = math.exp(eps) / (1 + math.exp(eps)) + 1e-5
    assert noisy_hits / TARGETS <= bound + 3 * math.sqrt(0.25 / TARGETS)
    # And every one of them was charged to the node's ledger.
    ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
    assert len(ledger.history()) == TARGETS
    assert ledger.spent() > 0


def test_a_huge_bias_no_longer_counts_the_negatives(tmp_path: Path) -> None:
    cfg = write_node(tmp_path / "tax", "tax", 500.0, make_rows(400, seed=12))
    spec = parse_job_spec(
        {
            "job": {"name": "bias", "target": "y", "positive": "1", "rounds": 1,
                    "epsilon": 1.0, "min_nodes": 1},
            "features": {"x1": {"lower": -4.0, "upper": 4.0}},
        }
    )  # fmt: skip
    _, holdout = load_job_frames(cfg, JobClaims.from_spec(spec))
    negatives = int((encode_target(holdout, spec) == 0).sum())
    weights = [np.zeros((1, 1), dtype=np.float32), np.array([40.0], dtype=np.float32)]
    exact = score_histogram(
        np.full(len(holdout), 40.0), encode_target(holdout, spec), spec.thresholds
    )
    assert exact.neg[-1] == negatives  # the old, exact answer

    errors = []
    for i in range(20):
        outcome = evaluate_as_coordinator(cfg, spec, f"bias-{i}#1", weights)
        assert outcome.holdout is not None, outcome.report.reason
        errors.append(outcome.holdout.neg[-1] - negatives)
        noise = outcome.holdout.noise_std
    # The estimate is off by the charged noise, not exact: its spread is the noise's.
    assert sum(e == 0 for e in errors) <= 2
    assert 0.5 * noise < float(np.std(errors)) < 2.0 * noise


@pytest.mark.parametrize(
    "weights",
    [
        [np.zeros((1, 3), np.float32), np.zeros(1, np.float32)],
        [np.full((1, 3), 9_999.0, np.float32), np.array([-9_999.0], np.float32)],
    ],
    ids=["zeros", "extreme"],
)
def test_every_evaluation_is_charged_whatever_the_weights(
    tmp_path: Path, weights: list[np.ndarray]
) -> None:
    cfg = write_node(tmp_path / "tax", "tax", 50.0, make_rows(300, seed=13))
    spec = parse_job_spec(
        {
            "job": {"name": "any", "target": "y", "positive": "1", "rounds": 1, "epsilon": 1.0},
            "features": {"x1": {"lower": -4.0, "upper": 4.0}, "x2": {"lower": -4.0, "upper": 4.0},
                         "grp": {"categories": ["a"]}},
        }
    )  # fmt: skip
    ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
    outcome = evaluate_as_coordinator(cfg, spec, "any#1", weights)
    assert outcome.report.status is ReplyStatus.OK, outcome.report.reason
    (entry,) = ledger.history()
    assert entry.event.mechanism.value == "gaussian"
    assert ledger.spent() == pytest.approx(outcome.report.releases[0].epsilon, rel=1e-9)


def test_weights_beyond_the_bound_are_refused_before_anything_is_charged(
    tmp_path: Path,
) -> None:
    cfg = write_node(tmp_path / "tax", "tax", 50.0, make_rows(300, seed=14))
    spec = _window_spec("wild", 0.0)
    ledger = SqliteLedger(cfg.ledger_path, cfg.dataset, cfg.budget)
    for wild in (np.inf, np.nan, 1e6):
        weights = [np.array([[wild]], dtype=np.float32), np.zeros(1, np.float32)]
        outcome = evaluate_as_coordinator(cfg, spec, "wild#1", weights)
        assert outcome.report.status is ReplyStatus.REFUSED
        assert "within +-" in outcome.report.reason
    assert ledger.history() == []
