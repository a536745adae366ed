"""The risk-model kind at the coordinator: rounds of DP-SGD, aggregation, evaluation."""

from __future__ import annotations

from server.kinds.base import CoordinatorKind, Drive, Finished
from server.kinds.risk.bundle import render_bundle
from server.kinds.risk.rounds import run_risk_job
from vocab.jobspec import RiskJobSpec
from vocab.progress import QuotePreview

__all__ = ["RiskCoordinator"]


class RiskCoordinator(CoordinatorKind[RiskJobSpec]):
    """Trains the model across the admitted nodes and writes weights, result and card."""

    spec_type = RiskJobSpec

    def run(self, spec: RiskJobSpec, drive: Drive) -> Finished:
        from vocab.models import build_model, get_weights

        outcome = run_risk_job(
            drive.grid, spec, drive.job_id, get_weights(build_model(spec)), drive.admission,
            drive.emit, drive.on_reply, drive.head, check=drive.check, claim=drive.claim,
        )  # fmt: skip
        return Finished(
            status=outcome.status,
            failure=outcome.failure,
            files=render_bundle(outcome),
            metrics=outcome.final_metrics,
            seconds=outcome.seconds,
        )

    def quote_preview(self, spec: RiskJobSpec, nodes: int) -> QuotePreview:
        return QuotePreview(
            evaluation=spec.evaluation.value,
            evaluations=spec.evaluations,
            evaluation_share=spec.evaluation_share,
        )
