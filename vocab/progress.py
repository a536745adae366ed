"""Progress events the ServerApp prints and the analyst CLI renders (one JSON line each).

The ServerApp's stdout reaches the analyst through `flwr run --stream`, on this host or
another, so progress rides on tagged log lines rather than a side channel. Each event is a
frozen dataclass; on the wire it is `EVENT_PREFIX` and a JSON object with the kind under
"event" beside the event's fields. The analyst's CLI does not trust that stream: a line is
read back into its dataclass only if every field has the declared type.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Self,
    TypeAlias,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)

from vocab.errors import SilobridgeError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "EVENT_PREFIX",
    "FINAL_KINDS",
    "Admission",
    "Answers",
    "CapView",
    "CentralView",
    "Emit",
    "EvaluateStart",
    "Evaluated",
    "Failed",
    "FinalEvent",
    "JobEnd",
    "JobStart",
    "NodePrivacy",
    "NodeQuoteView",
    "NodesConnected",
    "ProgressEvent",
    "ProgressEventError",
    "QuoteEvent",
    "QuotePreview",
    "QuoteResult",
    "Refusal",
    "ReleaseStart",
    "Released",
    "RoundDone",
    "RoundEnd",
    "RoundStart",
    "ScopeView",
    "decode_event",
    "encode_event",
    "no_progress",
]

EVENT_PREFIX = "@@silobridge "

_REPR_LIMIT = 60
_MAX_FLOAT = int(sys.float_info.max)


class ProgressEventError(SilobridgeError):
    """A tagged line names a known event kind but its fields are not that event's."""

    def __init__(self, kind: str, problem: str) -> None:
        super().__init__(
            f"the coordinator sent a malformed {kind!r} progress event: {problem}",
            "the coordinator may run another silobridge version; compare releases with its "
            "operator",
        )
        self.kind = kind


# --- reading untrusted fields back into their declared types ---------------------------------


@functools.cache
def _hints(cls: Any) -> dict[str, Any]:
    # Every record below is defined at module level, so its string annotations resolve here.
    return get_type_hints(cls)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _load(tp: Any, value: Any, where: str) -> Any:
    """`value` (parsed JSON) as type `tp`; raises ValueError naming `where` if it is not."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        # JSON has one number type; an integral figure may arrive without a fraction (and
        # stays an int, so it prints as sent), but must still be one a float can hold.
        if isinstance(value, float) or (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) <= _MAX_FLOAT
        ):
            return value
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is Union or origin is types.UnionType:
        arms = [a for a in get_args(tp) if (a is type(None)) == (value is None)]
        problems = []
        for arm in arms:
            try:
                return _load(arm, value, where)
            except ValueError as err:
                problems.append(err)
        if len(problems) == 1:  # e.g. the value of an optional field: say what is wrong in it
            raise problems[0]
    elif origin is tuple:
        (item, _) = get_args(tp)
        if isinstance(value, list):
            return tuple(_load(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    elif origin is dict:
        _, item = get_args(tp)
        if isinstance(value, dict):
            return {k: _load(item, v, f"{where}.{k}") for k, v in value.items()}
    elif dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, dict):
            return _load_record(tp, value, where)
    else:
        raise TypeError(f"bug: progress field {where} has an unsupported type {tp!r}")
    name = getattr(tp, "__name__", None) or str(tp)
    raise ValueError(f"{where} should be {name}, not {_shown(value)}")


RecordT = TypeVar("RecordT", bound="DataclassInstance")


def _load_record(cls: type[RecordT], data: Mapping[str, Any], where: str = "") -> RecordT:
    """A record from its fields; fields it does not declare are ignored (a newer sender's)."""
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        path = f"{where}.{f.name}" if where else f.name
        if f.name in data:
            values[f.name] = _load(hints[f.name], data[f.name], path)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ValueError(f"{path} is missing")
    return cls(**values)


def _plain(value: Any) -> Any:
    """A record as JSON-ready data: nested records become objects, tuples lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class _Event:
    """What every event shares: its kind, and its fields as they go on the wire."""

    kind: ClassVar[str]

    def to_fields(self) -> dict[str, Any]:
        """The event's fields as JSON-ready data (without the "event" key)."""
        data: dict[str, Any] = _plain(self)
        return data

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> Self:
        """The event from its wire fields.

        Raises:
            ProgressEventError: A field is missing or not of its declared type.
        """
        try:
            return _load_record(cls, data)
        except ValueError as err:
            raise ProgressEventError(cls.kind, str(err)) from None


# --- the records nested in events ----------------------------------------------------------


@dataclass(frozen=True)
class ScopeView:
    """One budget a node's quote draws on (`vocab.wire.ScopeQuote` as the analyst sees it)."""

    scope: str
    cap: float
    delta: float
    spent: float
    remaining: float
    after: float
    remaining_after: float
    fits: bool


@dataclass(frozen=True)
class NodeQuoteView:
    """One asked node's answer to a quote; `requested` is None when it gave no usable one."""

    department: str
    node_id: str
    status: str
    would_run: bool
    code: str
    reason: str
    requested: float | None
    scopes: tuple[ScopeView, ...]
    audit_seq: int
    audit_head: str


@dataclass(frozen=True)
class CapView:
    """One central cap a job meets at the coordinator."""

    kind: str
    key: str
    cap: float
    spent: float
    remaining: float
    after: float
    fits: bool


@dataclass(frozen=True)
class CentralView:
    """The job against the coordinator's central caps (none when it names no capped one)."""

    requested: float
    fits: bool
    caps: tuple[CapView, ...]


@dataclass(frozen=True)
class QuotePreview:
    """Public figures a kind shows beside the nodes' prices; a kind sets only its own.

    A risk model's evaluation plan (`evaluation`, `evaluations`, `evaluation_share`); a
    statistics job's expected 95 % half-widths (`half_widths`, component or statistic name
    -> half-width, plus `reference_count`; see `StatisticsPlan.expected_half_widths`).
    """

    evaluation: str | None = None
    evaluations: int | None = None
    evaluation_share: float | None = None
    half_widths: dict[str, float] | None = None


@dataclass(frozen=True)
class NodePrivacy:
    """A department's privacy figures after a round, as its last report gave them."""

    epsilon_job: float
    epsilon_spent: float
    epsilon_budget: float


# --- the events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobStart(_Event):
    """The coordinator took the job (or, with `mode` "quote", the request for its price)."""

    kind: ClassVar[str] = "job_start"
    job: str
    job_id: str
    rounds: int
    epsilon: float
    delta: float
    min_nodes: int
    analyst: str
    project: str
    out: str
    job_kind: str = "risk"
    mode: str = "run"


@dataclass(frozen=True)
class NodesConnected(_Event):
    """How many nodes were connected when the coordinator stopped waiting for them."""

    kind: ClassVar[str] = "nodes"
    connected: int
    min_nodes: int


_PREVIEW_FIELDS = frozenset(f.name for f in dataclasses.fields(QuotePreview))


@dataclass(frozen=True)
class QuoteEvent(_Event):
    """Every asked node's price of the whole job, the central caps, and whether it would run.

    On the wire the preview's figures sit beside the other fields (absent when unset).
    """

    job: str
    job_id: str
    epsilon: float
    delta: float
    analyst: str
    project: str
    min_nodes: int
    would_run: int
    ok: bool
    reason: str
    nodes: tuple[NodeQuoteView, ...]
    central: CentralView
    job_kind: str = "risk"
    elsewhere: tuple[str, ...] = ()
    """Departments whose nodes hold another dataset than the job's: they take no part."""
    preview: QuotePreview = field(default_factory=QuotePreview)

    def to_fields(self) -> dict[str, Any]:
        data = super().to_fields()
        preview: dict[str, Any] = data.pop("preview")
        return {**data, **{k: v for k, v in preview.items() if v is not None}}

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> Self:
        rest = {k: v for k, v in data.items() if k not in _PREVIEW_FIELDS and k != "preview"}
        shown = {k: v for k, v in data.items() if k in _PREVIEW_FIELDS}
        try:
            preview = _load_record(QuotePreview, shown)
        except ValueError as err:
            raise ProgressEventError(cls.kind, str(err)) from None
        return dataclasses.replace(super().from_fields(rest), preview=preview)


@dataclass(frozen=True)
class Admission(QuoteEvent):
    """The quote a run starts with; the job goes on only if `ok`."""

    kind: ClassVar[str] = "admission"


@dataclass(frozen=True)
class QuoteResult(QuoteEvent):
    """A dry run's last word: the quote, with nothing charged anywhere."""

    kind: ClassVar[str] = "quote_result"


@dataclass(frozen=True)
class RoundStart(_Event):
    """A training round is sent to `nodes` nodes."""

    kind: ClassVar[str] = "round_start"
    round: int
    rounds: int
    nodes: int


@dataclass(frozen=True)
class Answers(_Event):
    """Of the `asked` nodes sent this round's (or the quote's, round 0) message, `answered`
    have answered so far; sent as answers arrive."""

    kind: ClassVar[str] = "answers"
    round: int
    answered: int
    asked: int


@dataclass(frozen=True)
class Refusal(_Event):
    """A department refused, went silent or sent an unusable reply; it is out of the job."""

    kind: ClassVar[str] = "refusal"
    department: str
    round: int
    code: str
    reason: str


@dataclass(frozen=True)
class RoundEnd(_Event):
    """A risk-model round: who trained, who refused, the evaluation after it if paid for,
    and each department's privacy figures so far."""

    kind: ClassVar[str] = "round_end"
    round: int
    rounds: int
    participants: tuple[str, ...]
    refused: tuple[str, ...]
    metrics: dict[str, float]
    seconds: float
    privacy: dict[str, NodePrivacy]


@dataclass(frozen=True)
class EvaluateStart(_Event):
    """The model after round `after_round` is sent to `nodes` nodes for a noisy evaluation."""

    kind: ClassVar[str] = "evaluate_start"
    after_round: int
    nodes: int


@dataclass(frozen=True)
class Evaluated(_Event):
    """The pooled noisy metrics of the model after round `after_round`.

    On the wire the metrics (`vocab.metrics.evaluation_metrics` and `noise_std_per_bin`)
    sit beside `after_round` and `nodes`, one field each.
    """

    kind: ClassVar[str] = "evaluated"
    after_round: int
    nodes: int
    metrics: dict[str, float] = field(default_factory=dict)

    def to_fields(self) -> dict[str, Any]:
        return {**self.metrics, "after_round": self.after_round, "nodes": self.nodes}

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> Self:
        named = {"after_round", "nodes"}
        metrics = {k: v for k, v in data.items() if k not in named}
        return super().from_fields(
            {**{k: v for k, v in data.items() if k in named}, "metrics": metrics}
        )


@dataclass(frozen=True)
class ReleaseStart(_Event):
    """A one-shot kind asks `nodes` nodes for their one release each."""

    kind: ClassVar[str] = "release_start"
    nodes: int
    job_kind: str


@dataclass(frozen=True)
class Released(_Event):
    """The departments whose releases are combined."""

    kind: ClassVar[str] = "released"
    departments: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class RoundDone(_Event):
    """A round of a kind other than the risk model's (a Poisson regression's)."""

    kind: ClassVar[str] = "round_done"
    round: int
    nodes: int
    seconds: float


@dataclass(frozen=True)
class JobEnd(_Event):
    """A run's last word: its status, where the coordinator keeps the bundle, the bundle
    inlined (file name -> base64; None when too large, see `vocab.bundle.files_to_event`)
    and the headline figures (a mapping: which figures depends on the job's kind)."""

    kind: ClassVar[str] = "job_end"
    status: str
    failure: str
    result: str
    files: dict[str, str] | None
    metrics: dict[str, float]
    seconds: float


@dataclass(frozen=True)
class Failed(_Event):
    """The run or quote ended without a result, and why."""

    kind: ClassVar[str] = "failed"
    reason: str


ProgressEvent: TypeAlias = (
    JobStart
    | NodesConnected
    | Admission
    | RoundStart
    | Answers
    | Refusal
    | RoundEnd
    | EvaluateStart
    | Evaluated
    | ReleaseStart
    | Released
    | RoundDone
    | QuoteResult
    | JobEnd
    | Failed
)
FinalEvent: TypeAlias = JobEnd | Failed | QuoteResult
"""The ServerApp's last word: a run ends in `job_end` or `failed`, a quote in
`quote_result` or `failed`."""

Emit: TypeAlias = Callable[[ProgressEvent], None]
"""Where the ServerApp's code sends progress (stdout in a deployment, a list in tests)."""


def no_progress(event: ProgressEvent) -> None:
    """An `Emit` for callers that want no progress."""
    del event


_TYPES: dict[str, type[ProgressEvent]] = {
    t.kind: t
    for t in (
        JobStart, NodesConnected, Admission, RoundStart, Answers, Refusal, RoundEnd, EvaluateStart,
        Evaluated, ReleaseStart, Released, RoundDone, QuoteResult, JobEnd, Failed,
    )
}  # fmt: skip
FINAL_KINDS = frozenset({JobEnd.kind, Failed.kind, QuoteResult.kind})


def encode_event(event: ProgressEvent) -> str:
    """The event as one tagged JSON line."""
    return EVENT_PREFIX + json.dumps(
        {**event.to_fields(), "event": event.kind}, sort_keys=True, default=str
    )


def decode_event(line: str) -> ProgressEvent | None:
    """The event in a log line.

    Returns None if the line is not one of ours, or names a kind this version does not
    know (a newer coordinator's: nothing to show).

    Raises:
        ProgressEventError: The line names a known kind but its fields are not that kind's.
    """
    idx = line.find(EVENT_PREFIX)
    if idx < 0:
        return None
    try:
        data = json.loads(line[idx + len(EVENT_PREFIX) :])
    except (ValueError, RecursionError):  # not JSON, or JSON no one sends us on purpose
        return None
    if not isinstance(data, dict):
        return None
    kind = data.pop("event", None)
    event_type = _TYPES.get(kind) if isinstance(kind, str) else None
    if event_type is None:
        return None
    return event_type.from_fields(data)
