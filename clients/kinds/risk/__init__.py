"""The risk-model kind at the node: DP-SGD rounds and noisy held-out evaluations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from clients.data.node_dataset import read_job_frame, split_job_frame
from clients.kinds.base import JobRequest, NodeKind, Planned, Released
from clients.kinds.risk.plan import DpPlan, check_limits, plan_for_node
from vocab.errors import ConfigError, JobSpecError, PolicyRefusal
from vocab.jobspec import MAX_WEIGHT, RiskJobSpec
from vocab.privacy import PrivacyEvent
from vocab.wire import EVALUATE, TRAIN, ReleaseRecord

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from clients.node_config import NodeConfig

__all__ = ["RiskKind"]

Frames = tuple["pd.DataFrame", "pd.DataFrame"]


def _step(spec: RiskJobSpec, req: JobRequest) -> int:
    """Where the message falls in the job's time order: training round r is step 2r - 1,
    the evaluation after round r step 2r.

    Raises:
        PolicyRefusal: The job makes no such training round or evaluation.
    """
    if req.message == TRAIN:
        if 1 <= req.round <= spec.rounds:
            return 2 * req.round - 1
        raise PolicyRefusal(
            f"job {spec.name!r} has rounds 1 to {spec.rounds}; round {req.round} is not one "
            "of them",
            "the coordinator asks only for the rounds the job spec names",
        )
    if req.message != EVALUATE:
        raise PolicyRefusal(
            f"job {spec.name!r} is a risk job: it answers {TRAIN!r} and {EVALUATE!r} messages, "
            f"not {req.message!r}",
            "the coordinator asks only for the releases the job spec names",
        )
    for after in spec.evaluated_after():
        if spec.evaluation_round(after) == req.round:
            return 2 * after
    raise PolicyRefusal(
        f"job {spec.name!r} makes no evaluation as message {req.round} (evaluation "
        f"{spec.evaluation.value!r}: after round(s) {list(spec.evaluated_after())})",
        "the coordinator asks only for the evaluations the job spec pays for",
    )


class RiskKind(NodeKind[RiskJobSpec, DpPlan, Frames]):
    """Training rounds (`train`) and evaluations (`evaluate`) of a risk model."""

    spec_type = RiskJobSpec

    def plan(self, cfg: NodeConfig, spec: RiskJobSpec) -> DpPlan:
        plan = plan_for_node(cfg, spec)
        check_limits(cfg.limits, spec, plan)
        return plan

    def job_events(self, spec: RiskJobSpec, plan: DpPlan) -> list[PrivacyEvent]:
        return plan.job_events()

    def planned(self, spec: RiskJobSpec, plan: DpPlan, req: JobRequest) -> Planned:
        step = _step(spec, req)
        rounds = sum(1 for r in range(1, spec.rounds + 1) if 2 * r - 1 >= step)
        evaluations = sum(1 for a in spec.evaluated_after() if 2 * a >= step)
        event: PrivacyEvent = (
            plan.round_event() if req.message == TRAIN else plan.evaluation_event()
        )
        return Planned(event, [*plan.events_for(rounds), *plan.evaluation_events(evaluations)])

    def prepare(self, spec: RiskJobSpec, req: JobRequest) -> nn.Module:
        """The coordinator's weights in the spec's model, refused unless finite and bounded.

        The weights are the coordinator's own, so the refusal says nothing about the data.
        """
        from vocab.models import build_model, set_weights

        weights = req.weights
        if not all(np.all(np.isfinite(w)) and np.all(np.abs(w) <= MAX_WEIGHT) for w in weights):
            raise PolicyRefusal(
                f"the coordinator's weights for job {spec.name!r} are not all finite numbers "
                f"within +-{MAX_WEIGHT:g}",
                "send the job's aggregated model; diverged weights are not trained or evaluated",
            )
        model = build_model(spec)
        try:
            set_weights(model, weights)
        except (ValueError, RuntimeError) as err:
            raise JobSpecError(
                f"the coordinator's weights do not fit job {spec.name!r}'s model: {err}",
                "coordinator and node run different silobridge versions?",
            ) from err
        return model

    def load(self, cfg: NodeConfig, spec: RiskJobSpec, columns: tuple[str, ...]) -> Frames:
        train_df, holdout_df = split_job_frame(cfg, *read_job_frame(cfg, columns))
        if cfg.public_rows is not None and len(train_df) + len(holdout_df) > cfg.public_rows:
            # The officer's figure must bound the data: training sizes its work by it.
            problem = (
                f"dataset {cfg.dataset!r} holds more rows than its public size figure "
                "([data] public_rows) declares"
            )
            raise ConfigError(
                problem,
                "the officer raises public_rows to a published figure at least the rows held",
                public=problem,
            )
        return train_df, holdout_df

    def execute(
        self, cfg: NodeConfig, spec: RiskJobSpec, plan: DpPlan, req: JobRequest,
        prepared: Any, data: Frames,
    ) -> Released:  # fmt: skip
        """A DP-SGD round, or a noisy held-out histogram."""
        from clients.kinds.risk.trainer import evaluate, train_round
        from clients.secure_noise import discrete_gaussian
        from vocab.features import encode_features, encode_target
        from vocab.metrics import ScoreHistogram
        from vocab.models import get_weights

        train_df, holdout_df = data
        if req.message != TRAIN:
            exact = evaluate(
                prepared,
                encode_features(holdout_df, spec),
                encode_target(holdout_df, spec),
                spec.thresholds,
            )
            noisy = discrete_gaussian(exact.cells(), plan.evaluation_noise)
            return Released(holdout=ScoreHistogram.from_cells(noisy, plan.evaluation_noise))
        result = train_round(
            prepared,
            encode_features(train_df, spec),
            encode_target(train_df, spec),
            plan,
            # Work sized by the public figure, not the rows: a round's time tells nothing.
            slots=cfg.public_rows,
            deadline_s=float(cfg.limits.max_round_seconds),
        )
        weights = get_weights(result.model)
        if not all(np.all(np.isfinite(w)) for w in weights):
            # Post-processing of the noisy steps (non-finite rows never enter the sum), so
            # saying so reveals nothing more; but such weights are no use to anyone.
            raise ValueError("training produced non-finite weights")
        # Post-processing of the release: keeps the next round's weights within what nodes
        # take.
        return Released(weights=[np.clip(w, -MAX_WEIGHT, MAX_WEIGHT) for w in weights])

    def release_record(
        self, spec: RiskJobSpec, plan: DpPlan, req: JobRequest, event: PrivacyEvent,
        epsilon: float,
    ) -> ReleaseRecord:  # fmt: skip
        train = req.message == TRAIN
        params: dict[str, float | int] = dict(event.params())
        if not train:
            params.update(sensitivity=1, noise_std=params["noise_multiplier"])
        return ReleaseRecord(
            round=req.round,
            what="model_update" if train else "evaluation",
            mechanism=event.mechanism.value,
            params=params,
            epsilon=epsilon,
        )

    def report_fields(self, plan: DpPlan, req: JobRequest) -> dict[str, Any]:
        if req.message != TRAIN:
            return {}
        return {
            "noise_multiplier": plan.noise_multiplier,
            "sample_rate": plan.sample_rate,
            "steps": plan.steps_per_round,
        }
