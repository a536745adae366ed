"""The one place that turns job specs into protobuf bytes and back (protobuf stops here)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError

from protos.silobridge.v1 import job_pb2
from vocab.errors import JobSpecError
from vocab.jobs.regression import DEFAULT_REFINE_SHARE, Family, RegressionSpec
from vocab.jobs.statistics import (
    DEFAULT_SELECTION_SHARE,
    Grouping,
    Measure,
    NoiseKind,
    RowFilter,
    StatisticSpec,
    StatisticsSpec,
)
from vocab.jobspec import Aggregator, EvaluationMode, FeatureSpec, ModelKind, RiskJobSpec
from vocab.spec import JobEnvelope

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
_MEASURE_TO_PB = {m: getattr(job_pb2, f"MEASURE_{m.name}") for m in Measure}
_NOISE_TO_PB = {n: getattr(job_pb2, f"NOISE_KIND_{n.name}") for n in NoiseKind}
_FAMILY_TO_PB = {f: getattr(job_pb2, f"REGRESSION_FAMILY_{f.name}") for f in Family}
_MEASURE_FROM_PB = {v: k for k, v in _MEASURE_TO_PB.items()}
_NOISE_FROM_PB = {v: k for k, v in _NOISE_TO_PB.items()}
_FAMILY_FROM_PB = {v: k for k, v in _FAMILY_TO_PB.items()}
_MODEL_FROM_PB = {v: k for k, v in _MODEL_TO_PB.items()}
_EVAL_FROM_PB = {v: k for k, v in _EVAL_TO_PB.items()}
_AGG_FROM_PB = {v: k for k, v in _AGG_TO_PB.items()}

# Fields carried unchanged: same name and meaning in the dataclasses and the messages.
_ENVELOPE = (
    "name",
    "purpose",
    "analyst",
    "project",
    "epsilon",
    "delta",
    "min_nodes",
    "seed",
    "round_timeout_s",
    "node_wait_s",
    "dataset",
)
_RISK = (
    "target",
    "positive",
    "hidden",
    "rounds",
    "server_learning_rate",
    "evaluation_share",
)

_FEATURE_SCALARS = ("column", "lower", "upper", "log")


def _features_to_pb(features: tuple[FeatureSpec, ...]) -> list[job_pb2.FeatureSpec]:
    return [
        job_pb2.FeatureSpec(
            **{name: getattr(f, name) for name in _FEATURE_SCALARS}, categories=list(f.categories)
        )
        for f in features
    ]


def _features_from_pb(features: Any) -> tuple[FeatureSpec, ...]:
    return tuple(
        FeatureSpec(
            **{name: getattr(f, name) for name in _FEATURE_SCALARS}, categories=tuple(f.categories)
        )
        for f in features
    )


def _risk_fields(source: Any, unset: int | None = 0) -> dict[str, Any]:
    """The scalar risk fields of a spec or a payload; unset hyperparameters as `unset`."""
    fields: dict[str, Any] = {name: getattr(source, name) for name in _RISK}
    # Values left to the nodes' defaults: 0 on the wire (never valid for any of them).
    for name in RiskJobSpec.NODE_DEFAULTED:
        value = getattr(source, name)
        fields[name] = unset if value in (None, 0) else value
    return fields


def _risk_to_pb(spec: RiskJobSpec, msg: job_pb2.JobSpec) -> None:
    msg.risk.CopyFrom(
        job_pb2.RiskPayload(
            **_risk_fields(spec),
            model=_MODEL_TO_PB[spec.model],
            aggregator=_AGG_TO_PB[spec.aggregator],
            evaluation=_EVAL_TO_PB[spec.evaluation],
            evaluation_thresholds=list(spec.evaluation_thresholds),
            features=_features_to_pb(spec.features),
        )
    )


def _risk_from_pb(envelope: dict[str, Any], payload: Any) -> RiskJobSpec:
    if (
        payload.model not in _MODEL_FROM_PB
        or payload.aggregator not in _AGG_FROM_PB
        or payload.evaluation not in _EVAL_FROM_PB
    ):
        raise _unknown_enum("model, aggregator or evaluation mode")
    return RiskJobSpec(
        **envelope,
        **_risk_fields(payload, unset=None),
        model=_MODEL_FROM_PB[payload.model],
        aggregator=_AGG_FROM_PB[payload.aggregator],
        evaluation=_EVAL_FROM_PB[payload.evaluation],
        evaluation_thresholds=tuple(payload.evaluation_thresholds),
        features=_features_from_pb(payload.features),
    )


def _unknown_enum(what: str) -> JobSpecError:
    return JobSpecError(
        f"job spec names an unknown {what}",
        "coordinator and node run different silobridge versions?",
    )


def _statistics_to_pb(spec: StatisticsSpec, msg: job_pb2.JobSpec) -> None:
    msg.statistics.CopyFrom(
        job_pb2.StatisticsPayload(
            statistics=[
                job_pb2.StatisticSpec(
                    measure=_MEASURE_TO_PB[s.measure],
                    column=s.column,
                    lower=s.lower,
                    upper=s.upper,
                    edges=list(s.edges),
                    quantiles=list(s.quantiles),
                    bins=s.bins,
                )
                for s in spec.statistics
            ],
            group_by=[
                job_pb2.GroupingSpec(
                    column=g.column, keys=list(g.keys), edges=list(g.edges), private=g.private
                )
                for g in spec.group_by
            ],
            filters=[
                job_pb2.RowFilterSpec(
                    column=f.column, values=list(f.values), lower=f.lower, upper=f.upper
                )
                for f in spec.filters
            ],
            max_rows=spec.max_rows,
            max_groups=spec.max_groups,
            noise=_NOISE_TO_PB[spec.noise],
            threshold=spec.threshold,
            max_partitions=spec.max_partitions,
            # Left at 0 (absent) without a private grouping, so such specs keep their bytes
            # and fingerprints; the reader restores the default.
            selection_share=spec.selection_share if spec.private else 0.0,
        )
    )


def _statistics_from_pb(envelope: dict[str, Any], payload: Any) -> StatisticsSpec:
    if payload.noise not in _NOISE_FROM_PB or any(
        s.measure not in _MEASURE_FROM_PB for s in payload.statistics
    ):
        raise _unknown_enum("statistic or noise")
    return StatisticsSpec(
        **envelope,
        statistics=tuple(
            StatisticSpec(
                measure=_MEASURE_FROM_PB[s.measure],
                column=s.column,
                lower=s.lower,
                upper=s.upper,
                edges=tuple(s.edges),
                quantiles=tuple(s.quantiles),
                bins=s.bins,
            )
            for s in payload.statistics
        ),
        group_by=tuple(
            Grouping(column=g.column, keys=tuple(g.keys), edges=tuple(g.edges), private=g.private)
            for g in payload.group_by
        ),
        filters=tuple(
            RowFilter(column=f.column, values=tuple(f.values), lower=f.lower, upper=f.upper)
            for f in payload.filters
        ),
        max_rows=payload.max_rows,
        max_groups=payload.max_groups,
        noise=_NOISE_FROM_PB[payload.noise],
        threshold=payload.threshold,
        max_partitions=payload.max_partitions,
        selection_share=payload.selection_share or DEFAULT_SELECTION_SHARE,
    )


_REGRESSION = (
    "target",
    "target_lower",
    "target_upper",
    "max_rows",
    "rounds",
    "local_epochs",
    "batch_size",
    "learning_rate",
    "max_grad_norm",
    "exposure",
    "refine_share",
)


def _regression_to_pb(spec: RegressionSpec, msg: job_pb2.JobSpec) -> None:
    msg.regression.CopyFrom(
        job_pb2.RegressionPayload(
            **{name: getattr(spec, name) for name in _REGRESSION},
            family=_FAMILY_TO_PB[spec.family],
            features=_features_to_pb(spec.features),
        )
    )


def _regression_from_pb(envelope: dict[str, Any], payload: Any) -> RegressionSpec:
    if payload.family not in _FAMILY_FROM_PB:
        raise _unknown_enum("regression family")
    return RegressionSpec(
        **envelope,
        **{name: getattr(payload, name) for name in _REGRESSION if name != "refine_share"},
        refine_share=(
            payload.refine_share if payload.HasField("refine_share") else DEFAULT_REFINE_SHARE
        ),
        family=_FAMILY_FROM_PB[payload.family],
        features=_features_from_pb(payload.features),
    )


# Each kind's payload: its field in the JobSpec oneof, and its codec both ways.
_TO_PB: dict[str, Callable[[Any, job_pb2.JobSpec], None]] = {
    RiskJobSpec.KIND: _risk_to_pb,
    StatisticsSpec.KIND: _statistics_to_pb,
    RegressionSpec.KIND: _regression_to_pb,
}
_FROM_PB: dict[str, Callable[[dict[str, Any], Any], JobEnvelope]] = {
    RiskJobSpec.KIND: _risk_from_pb,
    StatisticsSpec.KIND: _statistics_from_pb,
    RegressionSpec.KIND: _regression_from_pb,
}


def job_to_bytes(spec: JobEnvelope) -> bytes:
    """Serialize a validated spec of any kind to `silobridge.v1.JobSpec` bytes."""
    msg = job_pb2.JobSpec(**{name: getattr(spec, name) for name in _ENVELOPE})
    _TO_PB[spec.kind](spec, msg)
    return bytes(msg.SerializeToString(deterministic=True))


def spec_fingerprint(spec: JobEnvelope) -> str:
    """The job spec's identity: SHA-256 (hex) of its wire bytes (`job_to_bytes`).

    It covers every field a node receives - the envelope (name, purpose, analyst, project,
    epsilon, delta, ...) and the kind's whole payload - since the wire form is all a node
    ever sees of a spec. The same in every process and on every machine: a message without
    maps serializes its fields in field-number order, numbers in fixed-width little-endian
    or varint form, so `epsilon = 1` and `epsilon = 1.0` are one spec. A ledger keys a
    job's retries on it; a signed approval names the one spec it approves.
    """
    return hashlib.sha256(job_to_bytes(spec)).hexdigest()


def job_from_bytes(data: bytes) -> JobEnvelope:
    """Parse and re-validate a spec of any kind received over the wire.

    Raises:
        JobSpecError: if the bytes are not a valid `JobSpec` of a kind this node knows.
    """
    msg = job_pb2.JobSpec()
    try:
        msg.ParseFromString(data)
    except DecodeError as err:
        raise JobSpecError(f"job spec bytes do not decode: {err}") from err
    kind = msg.WhichOneof("payload")
    if kind is None or kind not in _FROM_PB:
        raise JobSpecError(
            f"job spec carries no payload of a kind this node knows (got {kind!r})",
            "coordinator and node run different silobridge versions?",
        )
    envelope = {name: getattr(msg, name) for name in _ENVELOPE}
    return _FROM_PB[kind](envelope, getattr(msg, kind))
