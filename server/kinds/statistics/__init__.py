"""The statistics kind at the coordinator: one release per node, combined into cells."""

from __future__ import annotations

from typing import Any

from server.kinds.base import CoordinatorKind, Drive, Finished
from server.kinds.statistics.bundle import render_statistics
from server.kinds.statistics.combine import Cell, combine
from server.one_shot import release_once
from vocab.jobs.statistics import StatisticsSpec
from vocab.jobs.statistics_plan import plan_statistics
from vocab.jobs.statistics_release import NodeStatistics
from vocab.progress import QuotePreview, Refusal, Released
from vocab.wire import STATISTICS

__all__ = ["StatisticsCoordinator"]


class StatisticsCoordinator(CoordinatorKind[StatisticsSpec]):
    """Asks each admitted node for its noisy aggregates once and combines them."""

    spec_type = StatisticsSpec

    def run(self, spec: StatisticsSpec, drive: Drive) -> Finished:
        def finished(
            status: str, failure: str, cells: list[Cell], combined: list[str], shot: Any,
            seconds: float,
        ) -> Finished:  # fmt: skip
            files = render_statistics(
                spec, drive.job_id, status=status, failure=failure, cells=cells, shot=shot,
                combined=combined, seconds=seconds,
            )  # fmt: skip
            suppressed = sum(c.suppressed for c in cells)
            metrics = {"cells": len(cells), "suppressed": suppressed, "nodes": len(combined)}
            return Finished(status, failure, files, metrics, seconds)

        admission = drive.admission
        if not admission.ok:
            return finished(
                "failed", f"not started, nothing charged: {admission.reason}", [], [], None, 0.0
            )
        shot = release_once(spec, drive, STATISTICS)
        parsed: list[NodeStatistics] = []
        combined: list[str] = []
        for release in shot.releases:
            try:
                parsed.append(NodeStatistics.from_json(release.payload, spec))
            except ValueError as err:
                drive.emit(
                    Refusal(
                        department=release.department, round=1, code="bad_reply",
                        reason=f"its statistics do not fit the job: {str(err)[:200]}",
                    )
                )  # fmt: skip
                continue
            combined.append(release.department)
        drive.emit(Released(departments=tuple(combined), seconds=round(shot.seconds, 2)))
        if len(parsed) < spec.min_nodes:
            failure = (
                f"only {len(parsed)} department(s) released statistics; the job needs "
                f"{spec.min_nodes}, so nothing is combined (what was released stays charged)"
            )
            return finished("failed", failure, [], combined, shot, shot.seconds)
        cells = combine(spec, parsed)
        return finished("succeeded", "", cells, combined, shot, shot.seconds)

    def quote_preview(self, spec: StatisticsSpec, nodes: int) -> QuotePreview:
        """The expected 95 % half-widths of each kind of combined cell over the nodes that
        would run, at the spec's contribution bound (a node without a person id adds less
        noise, so these are upper figures)."""
        plan = plan_statistics(spec, spec.max_rows)
        return QuotePreview(half_widths=plan.expected_half_widths(max(1, nodes)))
