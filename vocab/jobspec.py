"""The risk-model job kind: a federated DP binary classifier's spec (payload of a job)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from vocab.column_groups import expand_columns
from vocab.errors import JobSpecError
from vocab.spec import (
    ENVELOPE_KEYS,
    NAME_RE,
    JobEnvelope,
    check_positive_float,
    check_positive_int,
    job_table,
    read_spec_file,
)
from vocab.target import TargetCondition, canonical_positive

__all__ = [
    "DEFAULT_EVALUATION_THRESHOLDS",
    "MAX_LEARNING_RATE",
    "MAX_WEIGHT",
    "NAME_RE",
    "Aggregator",
    "EvaluationMode",
    "FeatureSpec",
    "ModelKind",
    "RiskJobSpec",
    "load_job_spec",
    "parse_feature",
    "parse_features",
    "parse_job_spec",
]


class ModelKind(enum.Enum):
    """Model families a risk job can train."""

    LOGISTIC = "logistic"
    MLP = "mlp"


class Aggregator(enum.Enum):
    """Server-side update rule applied to the mean of the nodes' updates."""

    FEDAVG = "fedavg"
    FEDADAM = "fedadam"


class EvaluationMode(enum.Enum):
    """Which models the nodes evaluate on their held-out rows; every evaluation is charged."""

    FINAL = "final"
    """Once, on the final model."""
    ROUNDS = "rounds"
    """After every round (a learning curve); the last one is the final model's."""
    OFF = "off"
    """Never: the whole epsilon goes to training."""


DEFAULT_EVALUATION_THRESHOLDS = (0.02, 0.05, 0.1, 0.2, 0.5)
"""Predicted-probability edges of the evaluation histogram's bins (risk scores crowd low)."""

MAX_LEARNING_RATE = 100.0
"""Larger steps only make training diverge; bounded so a spec cannot provoke failures."""

MAX_WEIGHT = 1e4
"""Largest magnitude a model weight may have. Features are scaled to [-1, 1], so larger
weights only overflow activations; nodes refuse larger incoming weights, and nodes and the
coordinator clip what they send to this bound (post-processing, free)."""


@dataclass(frozen=True)
class FeatureSpec:
    """One feature column: numeric with declared bounds, or categorical with declared levels."""

    column: str
    lower: float = 0.0
    upper: float = 0.0
    log: bool = False
    categories: tuple[str, ...] = ()

    @property
    def is_categorical(self) -> bool:
        return bool(self.categories)

    @property
    def width(self) -> int:
        """Number of model inputs this feature encodes to."""
        return len(self.categories) if self.categories else 1


@dataclass(frozen=True, kw_only=True)
class RiskJobSpec(JobEnvelope):
    """A federated DP risk-model job; `epsilon`/`delta` is each node's guarantee for the job.

    `local_epochs`, `batch_size`, `learning_rate` and `max_grad_norm` left as None are
    chosen by each node from public figures (`clients.training.defaults`).
    """

    KIND: ClassVar[str] = "risk"
    NODE_DEFAULTED: ClassVar[tuple[str, ...]] = (
        "local_epochs", "batch_size", "learning_rate", "max_grad_norm",
    )  # fmt: skip
    """The DP-SGD values a spec may leave to each node's defaults (None when unset)."""

    target: str
    positive: str
    features: tuple[FeatureSpec, ...]
    model: ModelKind = ModelKind.LOGISTIC
    hidden: int = 16
    rounds: int = 3
    local_epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    max_grad_norm: float | None = None
    aggregator: Aggregator = Aggregator.FEDAVG
    server_learning_rate: float = 1.0
    evaluation: EvaluationMode = EvaluationMode.FINAL
    evaluation_share: float = 0.1
    evaluation_thresholds: tuple[float, ...] = DEFAULT_EVALUATION_THRESHOLDS

    def validate_payload(self) -> None:
        _validate(self)

    @property
    def left_to_nodes(self) -> tuple[str, ...]:
        """The DP-SGD values this spec leaves to the nodes' defaults."""
        return tuple(name for name in self.NODE_DEFAULTED if getattr(self, name) is None)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the job reads at a node: features then target."""
        return (*(f.column for f in self.features), self.target)

    @property
    def message_rounds(self) -> int:
        return self.rounds

    @property
    def n_inputs(self) -> int:
        return sum(f.width for f in self.features)

    @property
    def evaluations(self) -> int:
        """How many evaluation releases the job makes at each node."""
        return {EvaluationMode.FINAL: 1, EvaluationMode.ROUNDS: self.rounds}.get(self.evaluation, 0)

    @property
    def thresholds(self) -> tuple[float, ...]:
        """The evaluation bins' probability edges, 0.5 always among them (accuracy)."""
        return tuple(sorted({*self.evaluation_thresholds, 0.5}))

    def evaluation_round(self, after: int) -> int:
        """The message (and ledger) round of the evaluation after training round `after`."""
        return self.rounds + after

    def evaluated_after(self) -> tuple[int, ...]:
        """The training rounds after which the nodes evaluate the model."""
        if self.evaluation is EvaluationMode.OFF:
            return ()
        if self.evaluation is EvaluationMode.FINAL:
            return (self.rounds,)
        return tuple(range(1, self.rounds + 1))


def _validate_feature(feature: FeatureSpec) -> None:
    where = f"feature `{feature.column}`"
    if feature.is_categorical:
        if len(set(feature.categories)) != len(feature.categories):
            raise JobSpecError(f"{where} lists a category twice", "make `categories` unique")
        return
    lo, hi = feature.lower, feature.upper
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise JobSpecError(
            f"{where} needs finite bounds with lower < upper, got [{lo}, {hi}]",
            "declare public bounds `lower`/`upper` (or `categories` for a categorical column)",
        )
    if feature.log and lo < 0:
        raise JobSpecError(f"{where} uses log but lower < 0", "set lower >= 0 or drop `log`")


def _validate(spec: RiskJobSpec) -> None:
    if spec.delta <= 0:
        raise JobSpecError(
            "job `delta` must be > 0: DP-SGD's Gaussian noise gives (epsilon, delta)-DP",
            "use a delta well below 1/rows, e.g. 1e-5",
        )
    if not spec.target:
        raise JobSpecError("job has no `target` column", "set `target` in [job]")
    TargetCondition.parse(spec.positive)  # a spec from the wire is checked as from TOML
    if not spec.features:
        raise JobSpecError("job has no features", "add at least one [features.<column>] table")
    seen = {spec.target}
    for feature in spec.features:
        if feature.column in seen:
            raise JobSpecError(
                f"column `{feature.column}` is used twice (as target or feature)",
                "use each column once",
            )
        seen.add(feature.column)
        _validate_feature(feature)
    for name, upper in (
        ("rounds", 1000),
        ("local_epochs", 1000),
        ("batch_size", 1_000_000),
        ("hidden", 4096),
    ):
        if getattr(spec, name) is not None:  # None: the node's default
            check_positive_int(getattr(spec, name), name, upper)
    for name in ("learning_rate", "max_grad_norm", "server_learning_rate"):
        if getattr(spec, name) is not None:
            check_positive_float(getattr(spec, name), name)
    for name in ("learning_rate", "server_learning_rate"):
        if getattr(spec, name) is not None and getattr(spec, name) > MAX_LEARNING_RATE:
            raise JobSpecError(
                f"job `{name}` is {getattr(spec, name)!r}, above {MAX_LEARNING_RATE:g}",
                f"set `{name}` to at most {MAX_LEARNING_RATE:g}: larger steps only diverge",
            )
    _validate_evaluation(spec)


def _validate_evaluation(spec: RiskJobSpec) -> None:
    share = spec.evaluation_share
    if (
        isinstance(share, bool)
        or not isinstance(share, int | float)
        or not (math.isfinite(share) and 0 < share < 1)
    ):
        raise JobSpecError(
            f"job `evaluation_share` must be a number strictly between 0 and 1, got {share!r}",
            'it is the share of the job\'s epsilon spent on evaluation; use evaluation = "off" '
            "to spend none",
        )
    edges = spec.evaluation_thresholds
    if (
        not edges
        or len(edges) > 32
        or not all(isinstance(t, float) and 0 < t < 1 for t in edges)
        or list(edges) != sorted(set(edges))
    ):
        raise JobSpecError(
            f"job `evaluation_thresholds` must be 1-32 increasing probabilities in (0, 1), "
            f"got {list(edges)!r}",
            "e.g. evaluation_thresholds = [0.05, 0.1, 0.2, 0.5]",
        )


_JOB_KEYS = ENVELOPE_KEYS | {
    "target",
    "positive",
    "model",
    "hidden",
    "rounds",
    "local_epochs",
    "batch_size",
    "learning_rate",
    "max_grad_norm",
    "aggregator",
    "server_learning_rate",
    "evaluation",
    "evaluation_share",
    "evaluation_thresholds",
}
_FEATURE_KEYS = {"lower", "upper", "log", "categories"}


def _enum_value(enum_type: type[enum.Enum], key: str, raw: Any) -> Any:
    try:
        return enum_type(raw)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum_type)
        raise JobSpecError(f"job `{key}` = {raw!r} is not one of {allowed}") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_feature(column: str, raw: Any) -> FeatureSpec:
    """A `[features.<column>]` table as a feature (bounds or categories; validated where
    it is used, by the kind's spec).

    Raises:
        JobSpecError: naming the table, the key and the fix.
    """
    if not isinstance(raw, dict):
        raise JobSpecError(f"[features.{column}] must be a table", "see docs/job-spec.md")
    unknown = set(raw) - _FEATURE_KEYS
    if unknown:
        raise JobSpecError(
            f"[features.{column}] has unknown key(s) {sorted(unknown)}",
            f"allowed keys: {sorted(_FEATURE_KEYS)}",
        )
    cats = raw.get("categories", [])
    if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
        raise JobSpecError(
            f"[features.{column}] `categories` must be a list of strings",
            'quote numeric levels, e.g. categories = ["1", "2"]',
        )
    bounds = {key: raw.get(key, 0.0) for key in ("lower", "upper")}
    for key, value in bounds.items():
        if not _is_number(value):
            raise JobSpecError(f"[features.{column}] `{key}` must be a number, got {value!r}")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise JobSpecError(f"[features.{column}] `log` must be true or false, got {log!r}")
    return FeatureSpec(
        column=column,
        lower=float(bounds["lower"]),
        upper=float(bounds["upper"]),
        log=log,
        categories=tuple(cats),
    )


def parse_features(doc: dict[str, Any], source: str) -> tuple[FeatureSpec, ...]:
    """Every `[features.<column>]` table of a spec document, in order; a table whose name
    is a group pattern (`vocab.column_groups`) stands for each of its columns.

    Raises:
        JobSpecError: naming the table, the key and the fix.
    """
    raw = doc.get("features", {})
    if not isinstance(raw, dict):
        raise JobSpecError(f"{source}: `features` must be tables [features.<column>]")
    features = [
        parse_feature(column, table)
        for pattern, table in raw.items()
        for column in expand_columns(pattern)
    ]
    seen: set[str] = set()
    for feature in features:
        if feature.column in seen:
            raise JobSpecError(
                f"{source}: column `{feature.column}` is declared twice (by two [features] "
                "tables, or twice in one group)",
                "declare each column once",
            )
        seen.add(feature.column)
    return tuple(features)


def parse_job_spec(doc: dict[str, Any], *, source: str = "job spec") -> RiskJobSpec:
    """Build a validated `RiskJobSpec` from a parsed TOML document.

    Raises:
        JobSpecError: naming the bad key and how to fix it.
    """
    job = job_table(
        doc, source=source, kind=RiskJobSpec.KIND, tables=("job", "features"), keys=_JOB_KEYS,
        required=("name", "target"),
    )  # fmt: skip
    if "positive" not in job:
        raise JobSpecError(
            f"{source}: [job] needs `positive`: which target values count as the positive class",
            'e.g. positive = "bad", positive = ["1", "2"] or positive = "> 0"',
        )
    kwargs: dict[str, Any] = {k: v for k, v in job.items() if k not in {"kind"}}
    if "model" in kwargs:
        kwargs["model"] = _enum_value(ModelKind, "model", kwargs["model"])
    if "aggregator" in kwargs:
        kwargs["aggregator"] = _enum_value(Aggregator, "aggregator", kwargs["aggregator"])
    if "evaluation" in kwargs:
        kwargs["evaluation"] = _enum_value(EvaluationMode, "evaluation", kwargs["evaluation"])
    if "evaluation_thresholds" in kwargs:
        raw = kwargs["evaluation_thresholds"]
        if not isinstance(raw, list) or not all(
            isinstance(t, int | float) and not isinstance(t, bool) for t in raw
        ):
            raise JobSpecError(
                f"{source}: `evaluation_thresholds` must be a list of numbers, got {raw!r}",
                "e.g. evaluation_thresholds = [0.05, 0.1, 0.2, 0.5]",
            )
        kwargs["evaluation_thresholds"] = tuple(float(t) for t in raw)
    kwargs["positive"] = canonical_positive(kwargs["positive"])
    kwargs["features"] = parse_features(doc, source)
    try:
        return RiskJobSpec(**kwargs)
    except TypeError as err:
        raise JobSpecError(f"{source}: {err}") from err


def load_job_spec(path: Path) -> RiskJobSpec:
    """Read and validate a risk job spec TOML file.

    Raises:
        JobSpecError: for an unreadable file, bad TOML or an invalid spec.
    """
    return parse_job_spec(read_spec_file(path), source=str(path))
