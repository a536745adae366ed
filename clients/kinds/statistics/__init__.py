"""The statistics kind at the node: one noisy release of the query's aggregates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from clients.data.node_dataset import read_job_frame
from clients.kinds.base import JobRequest, NodeKind, Planned, Released, require_open
from vocab.errors import PolicyRefusal
from vocab.jobs.statistics import StatisticsSpec
from vocab.jobs.statistics_plan import StatisticsPlan, plan_statistics
from vocab.privacy import PrivacyEvent
from vocab.wire import STATISTICS, ReleaseRecord

if TYPE_CHECKING:
    import pandas as pd

    from clients.node_config import NodeConfig

__all__ = ["StatisticsKind"]

Data = tuple["pd.DataFrame", list[object] | None]

RELEASE_ROUND = 1
"""A statistics job is one message per node, its round 1."""


class StatisticsKind(NodeKind[StatisticsSpec, StatisticsPlan, Data]):
    """Counts, sums, means, variances, histograms and quantiles by group, noised once."""

    spec_type = StatisticsSpec

    def plan(self, cfg: NodeConfig, spec: StatisticsSpec) -> StatisticsPlan:
        """Sensitivity from the spec's contribution bounds when the node declares a person
        id (each person's rows are sampled down to them), else one row per person."""
        require_open(cfg, spec, spec.open_only_columns, "groups or filters by")
        contribution = spec.max_rows if cfg.person_id is not None else 1
        return plan_statistics(spec, contribution)

    def job_events(self, spec: StatisticsSpec, plan: StatisticsPlan) -> list[PrivacyEvent]:
        return plan.events()

    def planned(self, spec: StatisticsSpec, plan: StatisticsPlan, req: JobRequest) -> Planned:
        if req.message != STATISTICS or req.round != RELEASE_ROUND:
            raise PolicyRefusal(
                f"job {spec.name!r} is a statistics job: one {STATISTICS!r} message, round "
                f"{RELEASE_ROUND}; {req.message!r} round {req.round} is not part of it",
                "the coordinator asks only for the release the job spec names",
            )
        events = plan.events()
        (event,) = events  # a plan charges its whole query as one event
        return Planned(event, events)

    def load(self, cfg: NodeConfig, spec: StatisticsSpec, columns: tuple[str, ...]) -> Data:
        return read_job_frame(cfg, columns)

    def execute(
        self, cfg: NodeConfig, spec: StatisticsSpec, plan: StatisticsPlan, req: JobRequest,
        prepared: Any, data: Data,
    ) -> Released:  # fmt: skip
        from clients.data.split_key import node_secret
        from clients.kinds.statistics.aggregate import (
            exact_aggregates,
            noisy_release,
            private_release,
        )

        frame, person_keys = data
        secret = node_secret(cfg.ledger_path)
        if spec.private:
            release = private_release(frame, spec, plan, person_keys=person_keys, secret=secret)
            return Released(result=release.to_json())
        exact = exact_aggregates(frame, spec, plan, person_keys=person_keys, secret=secret)
        return Released(result=noisy_release(exact, plan).to_json())

    def release_record(
        self, spec: StatisticsSpec, plan: StatisticsPlan, req: JobRequest, event: PrivacyEvent,
        epsilon: float,
    ) -> ReleaseRecord:  # fmt: skip
        params: dict[str, float | int] = {
            **event.params(),
            "cells": plan.cells,
            "components": len(plan.components),
            "contribution": int(plan.components[0].sensitivity),
        }
        if plan.selection is not None:
            params["partition_threshold"] = plan.selection.threshold
        return ReleaseRecord(
            round=req.round,
            what="statistics",
            mechanism=event.mechanism.value,
            params=params,
            epsilon=epsilon,
        )
