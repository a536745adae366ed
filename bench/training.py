"""The compared ways to train the risk model, simulated in-process on the same encoded rows.

* silobridge: the nodes' `plan_dp` + `train_round` each round from the current global model,
  then the coordinator's `mean_delta` + `ServerOptimizer.step` (server/kinds/risk/rounds.py).
* central (with or without DP) and local-only DP: the same model on pooled or one node's rows.
* naive Flower + Opacus: the pattern of Flower's Opacus example (adap/flower,
  examples/opacus): a new `PrivacyEngine` every round, a fixed noise multiplier, SGD with
  momentum, example-weighted FedAvg.
"""

from __future__ import annotations

import dataclasses
import enum
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from bench.departments import NodeData
from clients.kinds.risk.plan import DpPlan, plan_dp
from clients.kinds.risk.trainer import train_round
from clients.training.defaults import local_epochs_for
from server.kinds.risk.aggregation import ServerOptimizer, mean_delta
from vocab.accounting import calibrate_noise_multiplier, epsilon_spent
from vocab.jobspec import RiskJobSpec
from vocab.metrics import roc_auc
from vocab.models import build_model, get_weights, set_weights
from vocab.privacy import DpSgdEvent

__all__ = [
    "NaiveCalibration",
    "NaiveConfig",
    "NaiveOutcome",
    "NoPrivacyConfig",
    "Score",
    "SilobridgeOutcome",
    "Weights",
    "model_from",
    "score",
    "train_central_dp",
    "train_central_no_privacy",
    "train_local_dp",
    "train_naive",
    "train_silobridge",
]

Float32Array = npt.NDArray[np.float32]
Weights = list[npt.NDArray[np.float32]]


@dataclass(frozen=True)
class Score:
    """A model's exact ROC AUC and accuracy (logit > 0) on some held-out rows."""

    auc: float
    accuracy: float


def model_from(spec: RiskJobSpec, weights: Weights) -> nn.Module:
    """A model of `spec`'s architecture holding `weights`."""
    model = build_model(spec)
    set_weights(model, weights)
    return model


def score(model: nn.Module, x: Float32Array, y: Float32Array) -> Score:
    """Exact AUC (`vocab.metrics.roc_auc`) and accuracy of `model` on (x, y)."""
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).squeeze(-1).numpy().astype(np.float64)
    logits = np.nan_to_num(logits, nan=0.0)
    accuracy = float(np.mean((logits > 0) == (y > 0.5)))
    return Score(roc_auc(logits, y), accuracy)


# --- central, no privacy: the ceiling -------------------------------------------------------


@dataclass(frozen=True)
class NoPrivacyConfig:
    """Plain Adam on pooled rows: enough epochs that the logistic model is converged."""

    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 0.01


def train_central_no_privacy(
    spec: RiskJobSpec, x: Float32Array, y: Float32Array, config: NoPrivacyConfig, seed: int
) -> nn.Module:
    """Minibatch Adam, no clipping or noise, same model and initial weights as the job."""
    torch.manual_seed(seed)
    model = build_model(spec, seed=seed)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    loss_fn = nn.BCEWithLogitsLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(config.epochs):
        order = torch.randperm(len(yt))
        for start in range(0, len(yt), config.batch_size):
            idx = order[start : start + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(xt[idx]).squeeze(-1), yt[idx]).backward()
            optimizer.step()
    return model


# --- central and local-only DP-SGD: the nodes' own DP-SGD on other row sets ----------------


def _job_long(spec: RiskJobSpec) -> RiskJobSpec:
    """The job as one training run: every round's local epochs back to back, on one
    "department" (so defaults that depend on `min_nodes` see one)."""
    local = local_epochs_for(spec)
    return dataclasses.replace(spec, rounds=1, local_epochs=spec.rounds * local, min_nodes=1)


def train_central_dp(
    spec: RiskJobSpec, x: Float32Array, y: Float32Array, seed: int
) -> tuple[nn.Module, DpPlan]:
    """DP-SGD on pooled rows for rounds x local_epochs epochs, noise for the whole run.

    Runs `train_round` (the nodes' exact DP-SGD) once, with `plan_dp`'s calibration by
    `calibrate_noise_multiplier` for all its steps: what a trusted data lake with DP gets.
    """
    whole = _job_long(spec)
    plan = plan_dp(whole, len(y))
    result = train_round(build_model(spec, seed=seed), x, y, plan)
    return result.model, plan


def train_local_dp(spec: RiskJobSpec, node: NodeData, seed: int) -> tuple[nn.Module, DpPlan]:
    """One department alone: the job's rounds of `train_round`, each continuing the last.

    Identical to silobridge with this node as the only participant under FedAvg at server
    learning rate 1, so its epsilon is the job's.
    """
    plan = plan_dp(spec, node.n_train)
    model = build_model(spec, seed=seed)
    for _ in range(spec.rounds):
        model = train_round(model, node.x_train, node.y_train, plan).model
    return model, plan


# --- silobridge ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SilobridgeOutcome:
    """The joint model and each node's plan and composed epsilon for the job."""

    weights: Weights
    plans: tuple[DpPlan, ...]
    node_epsilon: tuple[float, ...]


def train_silobridge(spec: RiskJobSpec, nodes: list[NodeData], seed: int) -> SilobridgeOutcome:
    """The nodes' and coordinator's algorithm for one job, every node in every round.

    The coordinator starts from `build_model(spec)` (seeded by `spec.seed`; here `seed`);
    each round each node rebuilds the model, loads the global weights and runs
    `train_round` with its `plan_dp` plan; the coordinator applies `mean_delta` and
    `ServerOptimizer.step`. `plan_dp` is pure, so it is planned once per node rather than
    re-planned every round as a node process does. DP noise and sampling come from OS
    entropy inside `train_round`, as on a node, so `seed` fixes the initial weights only.
    """
    job = dataclasses.replace(spec, seed=seed)
    weights = get_weights(build_model(job))
    plans = tuple(plan_dp(job, node.n_train) for node in nodes)
    optimizer = ServerOptimizer(job.aggregator, job.server_learning_rate)
    for _ in range(job.rounds):
        updates = [
            get_weights(
                train_round(model_from(job, weights), node.x_train, node.y_train, plan).model
            )
            for node, plan in zip(nodes, plans, strict=True)
        ]
        weights = optimizer.step(weights, mean_delta(weights, updates))
    node_epsilon = tuple(epsilon_spent(p.events_for(job.rounds), job.delta) for p in plans)
    return SilobridgeOutcome(weights, plans, node_epsilon)


# --- naive Flower + Opacus -------------------------------------------------------------------


@dataclass(frozen=True)
class NaiveConfig:
    """Hyperparameters of Flower's Opacus example (adap/flower, examples/opacus/opacus_fl).

    Its ClientApp trains one epoch per round with SGD(lr=0.001, momentum=0.9) on loaders of
    batch size 32 and `max-grad-norm = 1.0`; its app config runs 3 server rounds.
    """

    rounds: int = 3
    local_epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 0.001
    momentum: float = 0.9
    max_grad_norm: float = 1.0

    @classmethod
    def of(cls, spec: RiskJobSpec) -> NaiveConfig:
        """The pattern with a job spec's own training values (plain SGD, no momentum).

        Raises:
            ValueError: The spec leaves a training value to the nodes' defaults.
        """
        if (
            spec.local_epochs is None
            or spec.batch_size is None
            or spec.learning_rate is None
            or spec.max_grad_norm is None
        ):
            raise ValueError(f"spec {spec.name!r} must set every DP-SGD value")
        return cls(
            rounds=spec.rounds,
            local_epochs=spec.local_epochs,
            batch_size=spec.batch_size,
            learning_rate=spec.learning_rate,
            momentum=0.0,
            max_grad_norm=spec.max_grad_norm,
        )


class NaiveCalibration(enum.Enum):
    """What the naive pattern's fixed noise multiplier is chosen to cost."""

    PER_ROUND = "per_round"
    """One round costs epsilon: the figure the example prints each round."""

    WHOLE_JOB = "whole_job"
    """All rounds composed cost epsilon: the same pattern at an honest epsilon."""


@dataclass(frozen=True)
class NaiveOutcome:
    """The joint model, and per node: sigma, the epsilon it reports and the true epsilon."""

    weights: Weights
    noise_multipliers: tuple[float, ...]
    reported_epsilon: tuple[float, ...]
    true_epsilon: tuple[float, ...]


def _naive_round(
    spec: RiskJobSpec,
    weights: Weights,
    node: NodeData,
    config: NaiveConfig,
    sigma: float,
) -> Weights:
    from opacus import PrivacyEngine

    model = model_from(spec, weights)
    model.train()
    loader = DataLoader(
        TensorDataset(torch.from_numpy(node.x_train), torch.from_numpy(node.y_train)),
        batch_size=config.batch_size,
        shuffle=True,
    )
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.learning_rate, momentum=config.momentum
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = PrivacyEngine()
        dp_model, dp_optimizer, dp_loader = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            noise_multiplier=sigma,
            max_grad_norm=config.max_grad_norm,
        )
        loss_fn = nn.BCEWithLogitsLoss()
        for _ in range(config.local_epochs):
            for xb, yb in dp_loader:
                if len(xb) == 0:
                    # Opacus cannot step without per-sample gradients; the accounting
                    # below still counts the step, which only overstates epsilon.
                    continue
                dp_optimizer.zero_grad(set_to_none=True)
                loss_fn(dp_model(xb).squeeze(-1), yb).backward()
                dp_optimizer.step()
    trained: nn.Module = dp_model._module
    dp_model.remove_hooks()
    return get_weights(trained)


def train_naive(
    spec: RiskJobSpec,
    nodes: list[NodeData],
    config: NaiveConfig,
    epsilon: float,
    calibration: NaiveCalibration,
    seed: int,
) -> NaiveOutcome:
    """The naive pattern: fresh `PrivacyEngine` per round, fixed sigma, weighted FedAvg.

    Each node's sigma is calibrated (with our `calibrate_noise_multiplier`, at Opacus'
    actual Poisson rate 1 / len(loader)) so that one round, or all rounds, cost `epsilon`.
    The epsilon a node reports is one round's, as a fresh engine's accountant sees it; the
    true epsilon composes every round's event with `epsilon_spent`.

    Args:
        spec: Model, features and delta (its own hyperparameters are not used).
        nodes: The departments.
        config: The naive pattern's hyperparameters.
        epsilon: The epsilon the calibration targets.
        calibration: One round or the whole job.
        seed: Seeds initial weights, Opacus' sampling and noise (not secure mode).
    """
    torch.manual_seed(seed)
    weights = get_weights(build_model(spec, seed=seed))
    events: list[DpSgdEvent] = []
    for node in nodes:
        batches = -(-node.n_train // config.batch_size)
        steps = batches * config.local_epochs
        calibrated = steps * (config.rounds if calibration is NaiveCalibration.WHOLE_JOB else 1)
        sigma = calibrate_noise_multiplier(
            target_epsilon=epsilon, delta=spec.delta, sample_rate=1.0 / batches, steps=calibrated
        )
        events.append(DpSgdEvent(sigma, 1.0 / batches, steps))
    sizes = np.asarray([node.n_train for node in nodes], dtype=np.float64)
    for _ in range(config.rounds):
        updates = [
            _naive_round(spec, weights, node, config, event.noise_multiplier)
            for node, event in zip(nodes, events, strict=True)
        ]
        # Flower's FedAvg weights each update by the node's number of training examples.
        weights = [
            (np.tensordot(sizes, np.stack([u[i] for u in updates]), axes=1) / sizes.sum()).astype(
                np.float32
            )
            for i in range(len(weights))
        ]
    return NaiveOutcome(
        weights=weights,
        noise_multipliers=tuple(e.noise_multiplier for e in events),
        reported_epsilon=tuple(epsilon_spent([e], spec.delta) for e in events),
        true_epsilon=tuple(epsilon_spent([e] * config.rounds, spec.delta) for e in events),
    )
