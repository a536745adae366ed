"""The regression kind at the coordinator: a linear fit from one release per node, or a
Poisson model averaged over DP-SGD rounds, then refined by one Newton step from one more
release per node (which gives its standard errors)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from server.kinds.base import CoordinatorKind, Drive, Finished
from server.kinds.regression.bundle import render_regression
from server.one_shot import NodeRelease, OneShot, admitted_nodes, ask_nodes, release_once
from vocab.jobs.regression import Family, RegressionSpec
from vocab.jobs.regression_plan import plan_linear, plan_refinement
from vocab.jobs.regression_release import LinearRelease
from vocab.jobspec import MAX_WEIGHT
from vocab.progress import Refusal, Released, RoundDone, RoundStart
from vocab.wire import REGRESSION, TRAIN

__all__ = ["RegressionCoordinator"]


def _planned_std(spec: RegressionSpec, stated: float) -> bool:
    """Whether a node's stated noise std is one the plan gives (with or without a person
    id): a node that claims less noise than it must add is not believed."""
    allowed = {plan_linear(spec, c).noise_std for c in {1, spec.max_rows}}
    return any(math.isclose(stated, std, rel_tol=1e-9) for std in allowed)


class RegressionCoordinator(CoordinatorKind[RegressionSpec]):
    """Drives a linear or Poisson regression and writes its coefficients and card."""

    spec_type = RegressionSpec

    def run(self, spec: RegressionSpec, drive: Drive) -> Finished:
        if not drive.admission.ok:
            failure = f"not started, nothing charged: {drive.admission.reason}"
            return self._finished(spec, drive, "failed", failure, None, [], [], 0.0)
        if spec.family is Family.LINEAR:
            return self._linear(spec, drive)
        return self._poisson(spec, drive)

    def _finished(
        self, spec: RegressionSpec, drive: Drive, status: str, failure: str,
        fit: dict[str, Any] | None, shots: list[OneShot], combined: list[str], seconds: float,
    ) -> Finished:  # fmt: skip
        files = render_regression(
            spec, drive.job_id, status=status, failure=failure, fit=fit, shots=shots,
            combined=combined, seconds=seconds,
        )  # fmt: skip
        metrics: dict[str, Any] = {"nodes": len(combined)}
        if fit is not None and "rmse" in fit:
            metrics["rmse"] = fit["rmse"]
        return Finished(status, failure, files, metrics, seconds)

    def _too_few(self, spec: RegressionSpec, count: int, what: str) -> str:
        return (
            f"only {count} department(s) {what}; the job needs {spec.min_nodes}, so nothing "
            "is combined (what was released stays charged)"
        )

    def _linear(self, spec: RegressionSpec, drive: Drive) -> Finished:
        from server.kinds.regression.solve import check_release, solve_linear

        shot = release_once(spec, drive, REGRESSION)
        dims = spec.n_coefficients
        parsed: list[LinearRelease] = []
        combined: list[str] = []
        for release in shot.releases:
            try:
                stats = LinearRelease.from_json(release.payload, dims)
                if not _planned_std(spec, stats.noise_std):
                    raise ValueError("its stated noise is not the job's planned noise")
                check_release(stats, dims, stats.noise_std)
            except ValueError as err:
                self._bad(drive, release, str(err))
                continue
            parsed.append(stats)
            combined.append(release.department)
        drive.emit(Released(departments=tuple(combined), seconds=round(shot.seconds, 2)))
        if len(parsed) < spec.min_nodes:
            failure = self._too_few(spec, len(parsed), "released statistics")
            return self._finished(spec, drive, "failed", failure, None, [shot], combined, 0.0)
        fit = solve_linear(spec, parsed).to_json_dict()
        return self._finished(spec, drive, "succeeded", "", fit, [shot], combined, shot.seconds)

    def _bad(self, drive: Drive, release: NodeRelease, why: str) -> None:
        rnd = release.report.releases[0].round if release.report.releases else 0
        drive.emit(
            Refusal(department=release.department, round=rnd, code="bad_reply", reason=why[:200])
        )

    def _poisson(self, spec: RegressionSpec, drive: Drive) -> Finished:
        from server.kinds.regression.poisson_fit import initial_weights, poisson_fit

        weights = initial_weights(spec)
        active = admitted_nodes(drive)
        shots: list[OneShot] = []
        seconds = 0.0
        for rnd in range(1, spec.rounds + 1):
            drive.emit(RoundStart(round=rnd, rounds=spec.message_rounds, nodes=len(active)))
            shot = ask_nodes(spec, drive, TRAIN, rnd, active, weights)
            shots.append(shot)
            seconds += shot.seconds
            updates: list[np.ndarray[Any, Any]] = []
            kept: dict[int, str] = {}
            for release in shot.releases:
                update = release.weights or []
                if (
                    len(update) != 1
                    or update[0].shape != weights[0].shape
                    or not np.all(np.isfinite(update[0]))
                ):
                    self._bad(drive, release, "its model update does not fit the job's model")
                    continue
                updates.append(update[0])
                kept[release.node_id] = release.department
            active = kept
            if len(updates) < spec.min_nodes:
                failure = self._too_few(spec, len(updates), f"trained round {rnd}")
                return self._finished(
                    spec, drive, "failed", failure, None, shots, list(kept.values()), seconds
                )
            mean = np.clip(np.mean(updates, axis=0), -MAX_WEIGHT, MAX_WEIGHT)
            weights = [mean.astype(np.float32)]
            done = RoundDone(round=rnd, nodes=len(updates), seconds=round(shot.seconds, 2))
            drive.emit(done)
        combined = list(active.values())
        if not spec.refines:
            fit = poisson_fit(spec, weights).to_json_dict()
            return self._finished(spec, drive, "succeeded", "", fit, shots, combined, seconds)
        shot, fit_doc, refined_by = self._refine(spec, drive, weights, active)
        combined = refined_by or combined
        shots.append(shot)
        seconds += shot.seconds
        return self._finished(spec, drive, "succeeded", "", fit_doc, shots, combined, seconds)

    def _refine(
        self, spec: RegressionSpec, drive: Drive, weights: list[np.ndarray[Any, Any]],
        active: dict[int, str],
    ) -> tuple[OneShot, dict[str, Any], list[str]]:  # fmt: skip
        """The refinement round: every node that trained releases its score and information
        at the final model; with a quorum of plausible releases the fit is refined (and the
        departments that refined it are returned), else it stays DP-SGD's, without
        standard errors, and says why."""
        from server.kinds.regression.poisson_fit import poisson_fit, refined_fit
        from server.kinds.regression.poisson_refine import Unrefinable, refine
        from server.kinds.regression.solve import check_release

        plan = plan_refinement(spec)
        if plan is None:
            raise ValueError("refinement asked of a job that does not refine")
        rnd = spec.rounds + 1
        drive.emit(RoundStart(round=rnd, rounds=spec.message_rounds, nodes=len(active)))
        shot = ask_nodes(spec, drive, REGRESSION, rnd, active, weights, reply_weights=False)
        parsed: list[LinearRelease] = []
        used: list[str] = []
        for release in shot.releases:
            try:
                stats = LinearRelease.from_json(release.payload, spec.n_coefficients)
                if not math.isclose(stats.noise_std, plan.noise_std, rel_tol=1e-9):
                    raise ValueError("its stated noise is not the job's planned noise")
                check_release(stats, spec.n_coefficients, plan.noise_std, vector_bounded=False)
            except ValueError as err:
                self._bad(drive, release, str(err))
                continue
            parsed.append(stats)
            used.append(release.department)
        drive.emit(RoundDone(round=rnd, nodes=len(parsed), seconds=round(shot.seconds, 2)))
        if len(parsed) < spec.min_nodes:
            why = self._too_few(spec, len(parsed), "released the refinement")
            note = f"not refined, no standard errors: {why}"
            return shot, poisson_fit(spec, weights, note=note).to_json_dict(), []
        try:
            refinement = refine(spec, weights[0], parsed, plan.noise_std)
        except Unrefinable as err:
            note = f"not refined, no standard errors: {err}"
            return shot, poisson_fit(spec, weights, note=note).to_json_dict(), []
        return shot, refined_fit(spec, weights, refinement).to_json_dict(), used
