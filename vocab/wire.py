"""What travels in Flower messages between coordinator and nodes, as plain dicts.

Flower's records are built at the edges (ServerApp, ClientApp); this module fixes the
record names and the fields of a node's report so both sides agree on one vocabulary.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from vocab.audit_chain import SignedHead
from vocab.metrics import ScoreHistogram

__all__ = [
    "ARRAYS",
    "HOLDOUT",
    "JOB",
    "KIND_QUERIES",
    "REGRESSION",
    "REPORT",
    "RESULT",
    "SCHEMA",
    "STATISTICS",
    "DeclaredColumn",
    "NodeQuote",
    "NodeReport",
    "NodeSchema",
    "ReleaseRecord",
    "ReplyStatus",
    "ScopeQuote",
    "coordinator_head_fields",
    "coordinator_head_from",
    "histogram_from_record",
    "histogram_to_record",
    "schema_request_bytes",
]

# Record names inside a message's RecordDict.
ARRAYS = "arrays"  # model weights (ArrayRecord)
JOB = "job"  # ConfigRecord: spec bytes, round, job id, the coordinator's signed chain head
REPORT = "report"  # ConfigRecord: the node's NodeReport
HOLDOUT = "holdout"  # MetricRecord: the noisy ScoreHistogram of an evaluation
RESULT = "result"  # ConfigRecord: a one-shot kind's noisy result, as JSON text ("json")

# Message types beyond Flower's train/evaluate.
TRAIN = "train"
EVALUATE = "evaluate"
QUOTE = "query"  # a dry run and the admission: every check of the whole job, no charge
SCHEMA = "query.schema"  # the names, types and classes of a node's open and conditional columns
STATISTICS = "query.statistics"  # a statistics job's one release per node
REGRESSION = "query.regression"  # a linear regression's noisy sufficient statistics
KIND_QUERIES = (STATISTICS, REGRESSION)
"""Message types of one-shot kinds' releases (Flower routes `query.<kind>`)."""


class ReplyStatus(enum.Enum):
    """A node either did the work (and charged it) or refused with a reason."""

    OK = "ok"
    REFUSED = "refused"


# A reply is untrusted input: its scalar fields must have the declared types before any of
# them reaches an aggregate, the audit log or the analyst's progress stream.
_SCALARS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
}


def _typed(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    """`data`, once each of its scalar fields is known to have `cls`'s declared type.

    Raises:
        ValueError: A field has another type (a bool is not a number here).
    """
    declared = {f.name: str(f.type) for f in fields(cls)}
    for name, value in data.items():
        allowed = _SCALARS.get(declared.get(name, ""))
        if allowed is None:
            continue
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise ValueError(
                f"{cls.__name__}.{name} should be {declared[name]}, not {type(value).__name__}"
            )
    return data


def _answer_record(answer: Any, listed: str) -> dict[str, Any]:
    """A node answer as a ConfigRecord's fields: its status as text, `listed` (a tuple of
    records) as JSON text."""
    data = asdict(answer)
    data["status"] = answer.status.value
    data[listed] = json.dumps(data[listed])
    return data


def _answer_fields(
    cls: type[Any], record: dict[str, Any], listed: str, item: type[Any]
) -> dict[str, Any]:
    """`cls`'s fields read back from `_answer_record`'s form, each checked for its type.

    Raises:
        ValueError: A field has another type, or `listed` is not JSON of `item` records.
    """
    known = {f.name for f in fields(cls)}
    data = _typed(cls, {k: v for k, v in record.items() if k in known})
    data["status"] = ReplyStatus(data.get("status", ReplyStatus.REFUSED.value))
    data[listed] = tuple(
        item(**_typed(item, dict(entry))) for entry in json.loads(data.get(listed, "[]"))
    )
    return data


@dataclass(frozen=True)
class ReleaseRecord:
    """One charged release a node made for a job: its mechanism, parameters and cost.

    `what` is "model_update" (DP-SGD) or "evaluation" (a noisy histogram); `epsilon` is
    the release on its own at the node budget's delta (composition is cheaper than a sum).
    """

    round: int
    what: str
    mechanism: str
    params: dict[str, float | int]
    epsilon: float


@dataclass(frozen=True)
class NodeReport:
    """A node's account of one message: who, what happened, and its privacy figures.

    Epsilons are at the node budget's delta and recomputed from the node ledger.
    """

    department: str
    status: ReplyStatus
    code: str = ""
    reason: str = ""
    epsilon_job: float = 0.0
    epsilon_spent: float = 0.0
    epsilon_budget: float = 0.0
    delta: float = 0.0
    requested: float = 0.0
    noise_multiplier: float = 0.0
    sample_rate: float = 0.0
    steps: int = 0
    audit_seq: int = 0  # head of the node's audit log after this reply was logged
    audit_head: str = ""
    audit_sig: str = ""  # the node's signature over that head (its audit entry's own)
    releases: tuple[ReleaseRecord, ...] = ()  # what this message released, and its cost

    def to_record(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["releases"] = json.dumps([asdict(r) for r in self.releases])
        return data

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> NodeReport:
        """Raises ValueError (or TypeError) if the record is not a report of this version."""
        known = {f.name for f in fields(cls)}
        data = _typed(cls, {k: v for k, v in record.items() if k in known})
        data["status"] = ReplyStatus(data.get("status", ReplyStatus.REFUSED.value))
        data["releases"] = tuple(
            ReleaseRecord(**r) for r in json.loads(str(data.get("releases", "[]")))
        )
        return cls(**data)


def histogram_to_record(hist: ScoreHistogram) -> dict[str, Any]:
    return {"pos": list(hist.pos), "neg": list(hist.neg), "noise_std": hist.noise_std}


def histogram_from_record(record: dict[str, Any]) -> ScoreHistogram:
    pos, neg = list(record["pos"]), list(record["neg"])
    if len(pos) != len(neg):
        raise ValueError("an evaluation histogram has classes of different lengths")
    return ScoreHistogram(
        tuple(int(v) for v in pos), tuple(int(v) for v in neg), float(record["noise_std"])
    )


@dataclass(frozen=True)
class ScopeQuote:
    """One budget the job would draw on, e.g. the dataset's period total or a purpose's.

    Epsilons are at the scope's own delta, recomputed from the ledger's stored mechanisms.
    """

    scope: str  # "period 2026", "purpose fraud-screening", "analyst r.ahmed", ...
    epsilon: float  # the cap
    delta: float
    spent: float
    spent_after: float  # spent and the whole job composed
    fits: bool
    requested: float = 0.0  # the job on its own, at this scope's delta

    @property
    def remaining(self) -> float:
        return max(0.0, self.epsilon - self.spent)

    @property
    def remaining_after(self) -> float:
        return max(0.0, self.epsilon - self.spent_after)


@dataclass(frozen=True)
class NodeQuote:
    """A node's dry-run answer: what the whole job would cost it, and whether it would run.

    `status` OK means the node would take the job as things stand; REFUSED gives the code
    and reason it would refuse with. The node reads the job's columns only to check them
    against its schema; every figure comes from public parameters, and nothing is charged.
    """

    department: str
    status: ReplyStatus
    code: str = ""
    reason: str = ""
    requested: float = 0.0  # epsilon of the whole job on its own, at the budget's delta
    scopes: tuple[ScopeQuote, ...] = ()
    audit_seq: int = 0
    audit_head: str = ""
    audit_sig: str = ""

    def to_record(self) -> dict[str, Any]:
        return _answer_record(self, "scopes")

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> NodeQuote:
        """Raises ValueError (or TypeError) if the record is not a quote of this version."""
        return cls(**_answer_fields(cls, record, "scopes", ScopeQuote))


@dataclass(frozen=True)
class DeclaredColumn:
    """A column as its department's officer declared it: public by that declaration."""

    name: str
    type: str
    column_class: str


@dataclass(frozen=True)
class NodeSchema:
    """A node's answer to `job schema`: its open and conditional columns, never a
    restricted one, never a value or a count; or why it does not answer."""

    department: str
    status: ReplyStatus
    code: str = ""
    reason: str = ""
    dataset: str = ""
    columns: tuple[DeclaredColumn, ...] = ()
    audit_seq: int = 0
    audit_head: str = ""
    audit_sig: str = ""

    def to_record(self) -> dict[str, Any]:
        return _answer_record(self, "columns")

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> NodeSchema:
        """Raises ValueError (or TypeError) if the record is not a schema answer."""
        return cls(**_answer_fields(cls, record, "columns", DeclaredColumn))


def schema_request_bytes(dataset: str) -> bytes:
    """What the coordinator's claim on a schema request signs (with its id)."""
    return b"silobridge.schema/v1\0" + dataset.encode()


# The coordinator's signed audit chain head in a JOB record: every job message anchors the
# coordinator's log at the node, which records it in its own signed log.
_COORDINATOR_SEQ = "coordinator_seq"
_COORDINATOR_HEAD = "coordinator_head"
_COORDINATOR_SIG = "coordinator_sig"


def coordinator_head_fields(head: SignedHead | None) -> dict[str, Any]:
    """The JOB record's fields for the coordinator's head (none while its log is empty)."""
    if head is None:
        return {}
    return {_COORDINATOR_SEQ: head.seq, _COORDINATOR_HEAD: head.hash, _COORDINATOR_SIG: head.sig}


def coordinator_head_from(job: Any) -> SignedHead | None:
    """The coordinator's head a JOB record carries, or None when it carries none.

    Raises:
        ValueError: The fields are there but are not a head.
    """
    if _COORDINATOR_SEQ not in job:
        return None
    return SignedHead.from_record(
        {"seq": job[_COORDINATOR_SEQ], "hash": job.get(_COORDINATOR_HEAD),
         "sig": job.get(_COORDINATOR_SIG)}
    )  # fmt: skip
