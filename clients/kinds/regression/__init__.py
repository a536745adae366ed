"""The regression kind at the node: a linear fit's noisy sufficient statistics (one
release), or a Poisson model's DP-SGD rounds and its refinement release."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from clients.data.node_dataset import read_job_frame
from clients.kinds.base import JobRequest, NodeKind, Planned, Released
from clients.training.sizing import check_training_limits, planned_rows
from vocab.errors import ConfigError, JobSpecError, PolicyRefusal
from vocab.jobs.regression import Family, RegressionSpec
from vocab.jobs.regression_plan import LinearPlan, PoissonPlan, plan_linear, plan_poisson
from vocab.jobspec import MAX_WEIGHT
from vocab.privacy import PrivacyEvent
from vocab.wire import REGRESSION, TRAIN, ReleaseRecord

if TYPE_CHECKING:
    import pandas as pd

    from clients.node_config import NodeConfig

__all__ = ["RegressionKind"]

Plan = LinearPlan | PoissonPlan
Data = tuple["pd.DataFrame", list[object] | None]

LINEAR_ROUND = 1


def _bounded(cfg: NodeConfig, spec: RegressionSpec, data: Data) -> pd.DataFrame:
    """The rows the plan's sensitivity assumes: at most `max_rows` per person for a linear
    fit, one per person for DP-SGD (its accounting is per row), chosen by a keyed hash."""
    from clients.data.contribution import bound_contributions
    from clients.data.split_key import node_secret

    frame, persons = data
    if persons is None:
        return frame
    limit = spec.max_rows if spec.family is Family.LINEAR else 1
    cells = np.zeros(len(frame), dtype=np.int64)
    keep = bound_contributions(persons, cells, limit, 1, node_secret(cfg.ledger_path))
    return frame[keep].reset_index(drop=True)


class RegressionKind(NodeKind[RegressionSpec, Plan, Data]):
    """`query.regression` (linear, once) or `train` rounds (Poisson)."""

    spec_type = RegressionSpec

    def plan(self, cfg: NodeConfig, spec: RegressionSpec) -> Plan:
        if spec.family is Family.LINEAR:
            return plan_linear(spec, spec.max_rows if cfg.person_id is not None else 1)
        plan = plan_poisson(spec, planned_rows(cfg, holdout=False))
        check_training_limits(
            cfg.limits, spec.name, rounds=spec.rounds, steps=plan.steps_per_round,
            parameters=spec.n_coefficients,
        )  # fmt: skip
        return plan

    def job_events(self, spec: RegressionSpec, plan: Plan) -> list[PrivacyEvent]:
        return plan.events()

    def planned(self, spec: RegressionSpec, plan: Plan, req: JobRequest) -> Planned:
        if isinstance(plan, LinearPlan):
            if req.message == REGRESSION and req.round == LINEAR_ROUND:
                (event,) = plan.events()
                return Planned(event, [event])
        elif req.message == TRAIN and 1 <= req.round <= spec.rounds:
            return Planned(plan.round_event(), plan.events_from(req.round))
        elif req.message == REGRESSION and plan.refine is not None and req.round == spec.rounds + 1:
            return Planned(plan.refine_event(), plan.events_from(req.round))
        raise PolicyRefusal(
            f"job {spec.name!r} ({spec.family.value} regression) makes no {req.message!r} "
            f"release as round {req.round}",
            "the coordinator asks only for the releases the job spec names",
        )

    def prepare(self, spec: RegressionSpec, req: JobRequest) -> Any:
        """A Poisson round's (or refinement's) incoming model: one finite, bounded array of
        the design's width (the coordinator's own weights, so refusing them says nothing
        about the data)."""
        if spec.family is Family.LINEAR:
            return None
        from clients.kinds.regression.poisson import poisson_model

        weights = req.weights
        if (
            len(weights) != 1
            or weights[0].size != spec.n_coefficients
            or not np.all(np.isfinite(weights[0]))
            or not np.all(np.abs(weights[0]) <= MAX_WEIGHT)
        ):
            raise JobSpecError(
                f"the coordinator's model for job {spec.name!r} is not one array of "
                f"{spec.n_coefficients} finite weights within +-{MAX_WEIGHT:g}",
                "send the job's averaged model; diverged weights are not trained",
            )
        return poisson_model(spec, weights[0])

    def load(self, cfg: NodeConfig, spec: RegressionSpec, columns: tuple[str, ...]) -> Data:
        data = read_job_frame(cfg, columns)
        bound = cfg.public_rows
        if spec.family is Family.POISSON and bound is not None and len(data[0]) > bound:
            # DP-SGD sizes its work by the officer's figure, which must bound the data.
            problem = (
                f"dataset {cfg.dataset!r} holds more rows than its public size figure "
                "([data] public_rows) declares"
            )
            raise ConfigError(
                problem,
                "the officer raises public_rows to a published figure at least the rows held",
                public=problem,
            )
        return data

    def execute(
        self, cfg: NodeConfig, spec: RegressionSpec, plan: Plan, req: JobRequest,
        prepared: Any, data: Data,
    ) -> Released:  # fmt: skip
        frame = _bounded(cfg, spec, data)
        if isinstance(plan, LinearPlan):
            from clients.kinds.regression.suffstats import noisy_sufficient_statistics

            return Released(result=noisy_sufficient_statistics(frame, spec, plan).to_json())
        from clients.kinds.regression.poisson import (
            encode_poisson,
            noisy_refinement,
            train_poisson_round,
        )
        from vocab.models import get_weights

        x, y, offset = encode_poisson(frame, spec)
        if req.message == REGRESSION and plan.refine is not None:
            (start,) = get_weights(prepared)
            release = noisy_refinement(x, y, offset, start, spec, plan.refine)
            return Released(result=release.to_json())
        result = train_poisson_round(
            prepared, x, y, offset, spec, plan,
            # Work sized by the public figure, not the rows: a round's time tells nothing.
            slots=cfg.public_rows,
            deadline_s=float(cfg.limits.max_round_seconds),
        )  # fmt: skip
        weights = get_weights(result.model)
        if not all(np.all(np.isfinite(w)) for w in weights):
            raise ValueError("training produced non-finite weights")
        return Released(weights=[np.clip(w, -MAX_WEIGHT, MAX_WEIGHT) for w in weights])

    def release_record(
        self, spec: RegressionSpec, plan: Plan, req: JobRequest, event: PrivacyEvent,
        epsilon: float,
    ) -> ReleaseRecord:  # fmt: skip
        params: dict[str, float | int] = dict(event.params())
        gram = plan if isinstance(plan, LinearPlan) else None
        what = "sufficient_statistics"
        if isinstance(plan, PoissonPlan):
            refining = req.message == REGRESSION
            gram = plan.refine if refining else None
            what = "score_and_information" if refining else "model_update"
        if gram is not None:
            params.update(sensitivity=gram.sensitivity, noise_std=gram.noise_std, dims=gram.dims)
        return ReleaseRecord(
            round=req.round,
            what=what,
            mechanism=event.mechanism.value,
            params=params,
            epsilon=epsilon,
        )

    def report_fields(self, plan: Plan, req: JobRequest) -> dict[str, Any]:
        if not isinstance(plan, PoissonPlan):
            return {}
        return {
            "noise_multiplier": plan.noise_multiplier,
            "sample_rate": plan.sample_rate,
            "steps": plan.steps_per_round,
        }
