"""What a job kind supplies at the node; the release path (`clients.release`) does the rest.

A kind turns its payload into the privacy events it will release (`plan`, `releases`),
reads the data it needs (`load`), checks what a message brings before anything is
reserved (`prepare`), and computes one noisy release (`execute`). Answering again,
pricing, admission, reservation, commit and audit are the release path's, once for all.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from vocab.errors import PolicyRefusal
from vocab.privacy import PrivacyEvent
from vocab.spec import JobEnvelope
from vocab.wire import ReleaseRecord

if TYPE_CHECKING:
    from clients.node_config import NodeConfig
    from vocab.audit_chain import SignedHead
    from vocab.metrics import ScoreHistogram

__all__ = ["JobRequest", "NodeKind", "Planned", "Released", "Weights", "require_open"]

Weights = list[npt.NDArray[np.float32]]

SpecT = TypeVar("SpecT", bound=JobEnvelope)
PlanT = TypeVar("PlanT")
DataT = TypeVar("DataT")


@dataclass(frozen=True)
class JobRequest:
    """One message from the coordinator about a job.

    `message` is the Flower message type it came as (`train`, `evaluate`,
    `query.statistics`, ...); `round` the job's message round (a risk job's training round
    1..rounds or an evaluation's `spec.evaluation_round(after)`; 1 for one-shot kinds);
    `weights` the model a risk message carries. `coordinator_head` is the coordinator's
    signed audit chain head the message carried (None: it carried none), recorded in the
    node's log. `spec_bytes` is the spec exactly as it came and `claim` the coordinator's
    signature on the job id and those bytes (`vocab.job_claim`; "" when none came).
    """

    spec: JobEnvelope
    job_id: str
    round: int
    weights: Weights = field(default_factory=list)
    message: str = ""
    coordinator_head: SignedHead | None = None
    spec_bytes: bytes = b""
    claim: str = ""


@dataclass(frozen=True)
class Planned:
    """One message's release and the rest of the job's from it on (this one included)."""

    event: PrivacyEvent
    rest: list[PrivacyEvent]


@dataclass(frozen=True)
class Released:
    """What one execution releases: a risk model's weights or noisy held-out histogram, or
    a kind's result as JSON text. Every number in it is noised or post-processed."""

    weights: Weights | None = None
    holdout: ScoreHistogram | None = None
    result: str = ""


class NodeKind(abc.ABC, Generic[SpecT, PlanT, DataT]):
    """One job kind at the node. Every method but `load` and `execute` sees public figures
    only (the spec and the node config), so what it decides says nothing about the rows."""

    spec_type: type[SpecT]

    @abc.abstractmethod
    def plan(self, cfg: NodeConfig, spec: SpecT) -> PlanT:
        """The job's releases at this node, refused first over the node's limits.

        Raises:
            PolicyRefusal: The job asks more than the node's [limits] allow.
            ConfigError: The node lacks a public figure the plan needs.
        """

    @abc.abstractmethod
    def job_events(self, spec: SpecT, plan: PlanT) -> list[PrivacyEvent]:
        """Every release of the whole job at this node."""

    @abc.abstractmethod
    def planned(self, spec: SpecT, plan: PlanT, req: JobRequest) -> Planned:
        """This message's release and what the job still releases from it on.

        Raises:
            PolicyRefusal: The job makes no such message.
        """

    def prepare(self, spec: SpecT, req: JobRequest) -> Any:
        """Checks what the message brings (a model's weights) before anything is reserved.

        Raises:
            PolicyRefusal: What it brings is refused.
        """
        return None

    @abc.abstractmethod
    def load(self, cfg: NodeConfig, spec: SpecT, columns: tuple[str, ...]) -> DataT:
        """The job's data, read and checked against the node's schema (after the column
        policy let the job through).

        Raises:
            DataError: The data cannot be read or does not match the schema.
        """

    @abc.abstractmethod
    def execute(
        self, cfg: NodeConfig, spec: SpecT, plan: PlanT, req: JobRequest, prepared: Any,
        data: DataT,
    ) -> Released:  # fmt: skip
        """The noisy computation itself; runs only after its release is reserved."""

    @abc.abstractmethod
    def release_record(
        self, spec: SpecT, plan: PlanT, req: JobRequest, event: PrivacyEvent, epsilon: float
    ) -> ReleaseRecord:
        """How the reply describes this message's release (`epsilon`: on its own)."""

    def report_fields(self, plan: PlanT, req: JobRequest) -> dict[str, Any]:
        """Public plan figures the reply's report carries beside the release."""
        return {}


def require_open(cfg: NodeConfig, spec: JobEnvelope, columns: tuple[str, ...], why: str) -> None:
    """Refuses unless every one of `columns` is declared `open` at this node.

    Grouping and filtering reveal the column's values in the result's labels or shape,
    so an approval of a conditional column (which covers a noisy statistic of it) does
    not cover them.

    Raises:
        PolicyRefusal: Naming the columns that are not open.
    """
    from vocab.columns import ColumnClass

    declared = [(name, cfg.column(name)) for name in columns]
    closed = [
        f"{name} ({c.column_class.value})"
        for name, c in declared
        if c is not None and c.column_class is not ColumnClass.OPEN
    ]
    if closed:
        raise PolicyRefusal(
            f"job {spec.name!r} {why} {', '.join(closed)}, which this node does not declare `open`",
            "group and filter by open columns only; a conditional column may only be measured",
        )
