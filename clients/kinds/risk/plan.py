"""A risk job's releases at this node, planned from public figures only, and the node's limits.

Everything here is computed from the job spec and the node config - never from the rows -
so a plan, its price and a refusal over a limit reveal nothing about the data:

* the Poisson sampling rate is the batch size over the officer's public size figure
  (`[data] public_rows`), not over the true row count;
* hyperparameters the spec leaves unset are chosen from public figures only
  (`clients.training.defaults`);
* each evaluation is one discrete-Gaussian histogram of sensitivity 1, calibrated so that
  all of the job's evaluations cost `evaluation_share` of its epsilon on their own;
* DP-SGD's noise multiplier is calibrated so that all training rounds composed with all
  evaluations cost at most the job's epsilon at its delta.
"""

from __future__ import annotations

from dataclasses import dataclass

from clients.node_config import NodeConfig, NodeLimits
from clients.training.defaults import (
    TrainingChoice,
    batch_for,
    clip_for,
    learning_rate_for,
    local_epochs_for,
)
from clients.training.sizing import check_training_limits, planned_rows
from vocab.accounting import calibrate_noise_multiplier, gaussian_noise_multiplier
from vocab.jobspec import ModelKind, RiskJobSpec
from vocab.privacy import DpSgdEvent, GaussianEvent, PrivacyEvent

__all__ = ["DpPlan", "check_limits", "model_parameters", "plan_dp", "plan_for_node"]


@dataclass(frozen=True)
class DpPlan:
    """How this node runs a job: the same DP-SGD round each time, the same evaluation.

    `training` holds the hyperparameters the rounds use (the spec's, or the defaults');
    `evaluation_noise` is the discrete Gaussian scale of each evaluation histogram (its
    sensitivity is 1); 0 when the job evaluates nothing.
    """

    training: TrainingChoice
    sample_rate: float
    steps_per_round: int
    noise_multiplier: float
    rounds: int
    evaluations: int = 0
    evaluation_noise: float = 0.0

    def round_event(self) -> DpSgdEvent:
        return DpSgdEvent(self.noise_multiplier, self.sample_rate, self.steps_per_round)

    def evaluation_event(self) -> GaussianEvent:
        return GaussianEvent(self.evaluation_noise)

    def events_for(self, rounds: int) -> list[DpSgdEvent]:
        return [self.round_event()] * rounds

    def evaluation_events(self, count: int) -> list[GaussianEvent]:
        return [self.evaluation_event()] * count if count else []

    def job_events(self) -> list[PrivacyEvent]:
        """Every release of the whole job: its training rounds and its evaluations."""
        return [*self.events_for(self.rounds), *self.evaluation_events(self.evaluations)]


def plan_dp(spec: RiskJobSpec, public_rows: int) -> DpPlan:
    """Calibrate the job's noise for `spec.rounds` x local steps on `public_rows` rows, and
    choose what the spec leaves unset (`clients.training.defaults`).

    Raises:
        ConfigError: The job's epsilon cannot pay for its rounds and evaluations.
    """
    batch_size = batch_for(spec, public_rows)
    local_epochs = local_epochs_for(spec)
    sample_rate = min(1.0, batch_size / public_rows)
    # With Poisson sampling one epoch is 1/q expected batches.
    steps_per_round = max(1, round(local_epochs / sample_rate))
    evaluations = spec.evaluations
    evaluation_noise = 0.0
    if evaluations:
        evaluation_noise = gaussian_noise_multiplier(
            spec.epsilon * spec.evaluation_share, spec.delta, evaluations
        )
    alongside = [GaussianEvent(evaluation_noise)] * evaluations if evaluations else []
    sigma = calibrate_noise_multiplier(
        target_epsilon=spec.epsilon,
        delta=spec.delta,
        sample_rate=sample_rate,
        steps=steps_per_round * spec.rounds,
        alongside=alongside,
    )
    clip = clip_for(spec)
    learning_rate = learning_rate_for(
        spec, batch_size=batch_size, clip=clip, noise_multiplier=sigma,
        steps=steps_per_round * spec.rounds,
    )  # fmt: skip
    training = TrainingChoice(batch_size, local_epochs, clip, learning_rate)
    return DpPlan(
        training, sample_rate, steps_per_round, sigma, spec.rounds, evaluations, evaluation_noise
    )


def plan_for_node(cfg: NodeConfig, spec: RiskJobSpec) -> DpPlan:
    """The node's plan for `spec`, from its officer's public size figure.

    Raises:
        ConfigError: The node config declares no `public_rows`.
    """
    return plan_dp(spec, planned_rows(cfg))


def model_parameters(spec: RiskJobSpec) -> int:
    """How many weights the spec's model has (as `vocab.models.build_model` builds it)."""
    if spec.model is ModelKind.LOGISTIC:
        return spec.n_inputs + 1
    return spec.n_inputs * spec.hidden + spec.hidden + spec.hidden + 1


def check_limits(limits: NodeLimits, spec: RiskJobSpec, plan: DpPlan) -> None:
    """Refuses a risk job that asks more of this node than its [limits] allow.

    Raises:
        PolicyRefusal: Naming the limit, the value asked, and the node's cap.
    """
    check_training_limits(
        limits, spec.name, rounds=spec.rounds, steps=plan.steps_per_round,
        parameters=model_parameters(spec),
    )  # fmt: skip
