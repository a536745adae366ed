"""Shared pieces of the attack tests: a department node with generated rows, and messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from clients.node_config import NodeConfig
from clients.release import JobOutcome, JobRequest, handle_request
from vocab.jobspec import RiskJobSpec
from vocab.wire import EVALUATE, TRAIN

__all__ = ["evaluate_as_coordinator", "train_as_coordinator"]


def evaluate_as_coordinator(
    cfg: NodeConfig,
    spec: RiskJobSpec,
    job_id: str,
    weights: list[npt.NDArray[np.float32]],
) -> JobOutcome:
    """What a hostile coordinator gets back for an evaluation of weights it chose."""
    request = JobRequest(spec, job_id, spec.evaluation_round(spec.rounds), weights, EVALUATE)
    return handle_request(Path(cfg.config_path), cfg.department, request)


def train_as_coordinator(
    cfg: NodeConfig,
    spec: RiskJobSpec,
    job_id: str,
    weights: list[npt.NDArray[np.float32]],
    rnd: int = 1,
) -> JobOutcome:
    """What a hostile coordinator gets back for a training round from weights it chose."""
    request = JobRequest(spec, job_id, rnd, weights, TRAIN)
    return handle_request(Path(cfg.config_path), cfg.department, request)
