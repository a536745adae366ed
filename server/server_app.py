"""The coordinator's Flower ServerApp: decodes the submitted job, runs it, writes the bundle."""

from __future__ import annotations

import base64
import binascii
import logging
from pathlib import Path
from typing import Any

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from server.result_bundle import render_bundle
from server.risk_job import run_risk_job
from vocab.bundle import files_to_event, write_files
from vocab.errors import JobSpecError, SilobridgeError
from vocab.progress import encode_event
from vocab.serde import job_from_bytes

__all__ = ["app"]

log = logging.getLogger(__name__)
app = ServerApp()


def _emit(kind: str, **fields: Any) -> None:
    # stdout is what `flwr run --stream` relays to the analyst.
    print(encode_event(kind, **fields), flush=True)


def _decode(run_config: dict[str, Any]) -> tuple[Any, Path]:
    raw, out = str(run_config.get("job", "")), str(run_config.get("out", ""))
    if not raw or not out:
        raise JobSpecError(
            "run config lacks `job` or `out`",
            "submit jobs with `silobridge job run SPEC --out DIR`, not plain `flwr run`",
        )
    try:
        spec = job_from_bytes(base64.b64decode(raw, validate=True))
    except binascii.Error as err:
        raise JobSpecError(f"run config `job` is not base64: {err}") from err
    return spec, Path(out)


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run one risk-model job and write its result bundle under the run config's `out`."""
    from vocab.models import build_model, get_weights

    try:
        spec, out_dir = _decode(dict(context.run_config))
    except SilobridgeError as err:
        _emit("failed", reason=str(err))
        return
    job_id = f"{spec.name}#{grid.run.run_id}"
    _emit(
        "job_start",
        job=spec.name,
        job_id=job_id,
        rounds=spec.rounds,
        epsilon=spec.epsilon,
        delta=spec.delta,
        min_nodes=spec.min_nodes,
        out=str(out_dir),
    )
    try:
        initial = get_weights(build_model(spec))
        outcome = run_risk_job(grid, spec, job_id, initial, _emit)
        files = render_bundle(outcome)
    except Exception as err:  # the analyst gets a reason, not a silent stream end
        log.exception("job %s failed", job_id)
        _emit("failed", reason=f"bug in the coordinator: {type(err).__name__}: {err}")
        return
    # A copy stays on the coordinator host; the analyst's CLI writes the inlined one.
    try:
        result_path = str(write_files(out_dir, files))
    except OSError as err:
        log.warning("cannot write the bundle to %s on the coordinator host: %s", out_dir, err)
        result_path = ""
    _emit(
        "job_end",
        status=outcome.status,
        failure=outcome.failure,
        result=result_path,
        files=files_to_event(files),
        metrics=outcome.final_metrics,
        seconds=round(outcome.seconds, 2),
    )
