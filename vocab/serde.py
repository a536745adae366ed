"""The one place that turns job specs into protobuf bytes and back (protobuf stops here)."""

from __future__ import annotations

from google.protobuf.message import DecodeError

from protos.silobridge.v1 import job_pb2
from vocab.errors import JobSpecError
from vocab.jobspec import Aggregator, FeatureSpec, ModelKind, RiskJobSpec

__all__ = ["job_from_bytes", "job_to_bytes"]

_MODEL_TO_PB = {
    ModelKind.LOGISTIC: job_pb2.MODEL_KIND_LOGISTIC,
    ModelKind.MLP: job_pb2.MODEL_KIND_MLP,
}
_AGG_TO_PB = {
    Aggregator.FEDAVG: job_pb2.AGGREGATOR_FEDAVG,
    Aggregator.FEDADAM: job_pb2.AGGREGATOR_FEDADAM,
}
_MODEL_FROM_PB = {v: k for k, v in _MODEL_TO_PB.items()}
_AGG_FROM_PB = {v: k for k, v in _AGG_TO_PB.items()}


def job_to_bytes(spec: RiskJobSpec) -> bytes:
    """Serialize a validated spec to `silobridge.v1.RiskJobSpec` bytes."""
    msg = job_pb2.RiskJobSpec(
        name=spec.name,
        purpose=spec.purpose,
        target=spec.target,
        positive=spec.positive,
        model=_MODEL_TO_PB[spec.model],
        hidden=spec.hidden,
        features=[
            job_pb2.FeatureSpec(
                column=f.column,
                lower=f.lower,
                upper=f.upper,
                log=f.log,
                categories=list(f.categories),
            )
            for f in spec.features
        ],
        rounds=spec.rounds,
        local_epochs=spec.local_epochs,
        batch_size=spec.batch_size,
        learning_rate=spec.learning_rate,
        max_grad_norm=spec.max_grad_norm,
        epsilon=spec.epsilon,
        delta=spec.delta,
        min_nodes=spec.min_nodes,
        aggregator=_AGG_TO_PB[spec.aggregator],
        server_learning_rate=spec.server_learning_rate,
        seed=spec.seed,
        round_timeout_s=spec.round_timeout_s,
        node_wait_s=spec.node_wait_s,
    )
    return bytes(msg.SerializeToString(deterministic=True))


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
    if msg.model not in _MODEL_FROM_PB or msg.aggregator not in _AGG_FROM_PB:
        raise JobSpecError(
            "job spec names an unknown model or aggregator",
            "coordinator and node run different silobridge versions?",
        )
    return RiskJobSpec(
        name=msg.name,
        purpose=msg.purpose,
        target=msg.target,
        positive=msg.positive,
        model=_MODEL_FROM_PB[msg.model],
        hidden=msg.hidden,
        features=tuple(
            FeatureSpec(
                column=f.column,
                lower=f.lower,
                upper=f.upper,
                log=f.log,
                categories=tuple(f.categories),
            )
            for f in msg.features
        ),
        rounds=msg.rounds,
        local_epochs=msg.local_epochs,
        batch_size=msg.batch_size,
        learning_rate=msg.learning_rate,
        max_grad_norm=msg.max_grad_norm,
        epsilon=msg.epsilon,
        delta=msg.delta,
        min_nodes=msg.min_nodes,
        aggregator=_AGG_FROM_PB[msg.aggregator],
        server_learning_rate=msg.server_learning_rate,
        seed=msg.seed,
        round_timeout_s=msg.round_timeout_s,
        node_wait_s=msg.node_wait_s,
    )
