"""The one place that turns job specs into protobuf bytes and back (protobuf stops here)."""

from __future__ import annotations

import hashlib

from google.protobuf.message import DecodeError

from protos.silobridge.v1 import job_pb2
from vocab.errors import JobSpecError
from vocab.jobspec import Aggregator, EvaluationMode, FeatureSpec, ModelKind, RiskJobSpec

__all__ = ["job_from_bytes", "job_to_bytes", "spec_fingerprint"]

_MODEL_TO_PB = {
    ModelKind.LOGISTIC: job_pb2.MODEL_KIND_LOGISTIC,
    ModelKind.MLP: job_pb2.MODEL_KIND_MLP,
}
_AGG_TO_PB = {
    Aggregator.FEDAVG: job_pb2.AGGREGATOR_FEDAVG,
    Aggregator.FEDADAM: job_pb2.AGGREGATOR_FEDADAM,
}
_EVAL_TO_PB = {
    EvaluationMode.FINAL: job_pb2.EVALUATION_MODE_FINAL,
    EvaluationMode.ROUNDS: job_pb2.EVALUATION_MODE_ROUNDS,
    EvaluationMode.OFF: job_pb2.EVALUATION_MODE_OFF,
}
_MODEL_FROM_PB = {v: k for k, v in _MODEL_TO_PB.items()}
_EVAL_FROM_PB = {v: k for k, v in _EVAL_TO_PB.items()}
_AGG_FROM_PB = {v: k for k, v in _AGG_TO_PB.items()}

# Fields carried unchanged: same name and meaning in the dataclass and the message.
_SCALARS = (
    "name", "purpose", "target", "positive", "hidden", "rounds", "local_epochs",
    "batch_size", "learning_rate", "max_grad_norm", "epsilon", "delta", "min_nodes",
    "server_learning_rate", "seed", "round_timeout_s", "node_wait_s", "analyst", "project",
    "evaluation_share",
)  # fmt: skip
_FEATURE_SCALARS = ("column", "lower", "upper", "log")


def job_to_bytes(spec: RiskJobSpec) -> bytes:
    """Serialize a validated spec to `silobridge.v1.RiskJobSpec` bytes."""
    msg = job_pb2.RiskJobSpec(
        **{name: getattr(spec, name) for name in _SCALARS},
        model=_MODEL_TO_PB[spec.model],
        aggregator=_AGG_TO_PB[spec.aggregator],
        evaluation=_EVAL_TO_PB[spec.evaluation],
        evaluation_thresholds=list(spec.evaluation_thresholds),
        features=[
            job_pb2.FeatureSpec(
                **{name: getattr(f, name) for name in _FEATURE_SCALARS},
                categories=list(f.categories),
            )
            for f in spec.features
        ],
    )
    return bytes(msg.SerializeToString(deterministic=True))


def spec_fingerprint(spec: RiskJobSpec) -> str:
    """The job spec's identity: SHA-256 (hex) of its wire bytes (`job_to_bytes`).

    It covers every field a node receives - name, purpose, analyst, project, features and
    their bounds, model, rounds, epsilon, delta and the rest - since the wire form is all
    a node ever sees of a spec. The same in every process and on every machine: a message
    without maps serializes its fields in field-number order, numbers in fixed-width
    little-endian or varint form, so `epsilon = 1` and `epsilon = 1.0` are one spec. A
    ledger keys a job's retries on it; a signed approval names the one spec it approves.
    """
    return hashlib.sha256(job_to_bytes(spec)).hexdigest()


def job_from_bytes(data: bytes) -> RiskJobSpec:
    """Parse and re-validate a spec received over the wire.

    Raises:
        JobSpecError: if the bytes are not a valid `RiskJobSpec`.
    """
    msg = job_pb2.RiskJobSpec()
    try:
        msg.ParseFromString(data)
    except DecodeError as err:
        raise JobSpecError(f"job spec bytes do not decode: {err}") from err
    if (
        msg.model not in _MODEL_FROM_PB
        or msg.aggregator not in _AGG_FROM_PB
        or msg.evaluation not in _EVAL_FROM_PB
    ):
        raise JobSpecError(
            "job spec names an unknown model, aggregator or evaluation mode",
            "coordinator and node run different silobridge versions?",
        )
    return RiskJobSpec(
        **{name: getattr(msg, name) for name in _SCALARS},
        model=_MODEL_FROM_PB[msg.model],
        aggregator=_AGG_FROM_PB[msg.aggregator],
        evaluation=_EVAL_FROM_PB[msg.evaluation],
        evaluation_thresholds=tuple(msg.evaluation_thresholds),
        features=tuple(
            FeatureSpec(
                **{name: getattr(f, name) for name in _FEATURE_SCALARS},
                categories=tuple(f.categories),
            )
            for f in msg.features
        ),
    )
