"""What a job kind supplies at the coordinator; the ServerApp does the rest.

The ServerApp admits a job against the central caps and has every node quote it (one
path for every kind); the kind then drives its messages to the nodes that admitted it,
combines their noisy replies and renders the result bundle. Settling the central caps
and the coordinator's audit log stay the ServerApp's.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from flwr.serverapp import Grid

from server.exchange import Claimer, HeadSource, NodeReply, no_claim
from server.quote_round import QuoteOutcome
from server.reply_check import ReplyCheck
from vocab.progress import Emit, QuotePreview
from vocab.spec import JobEnvelope

__all__ = ["CoordinatorKind", "Drive", "Finished"]

SpecT = TypeVar("SpecT", bound=JobEnvelope)
OnReply = Callable[[NodeReply], None]


@dataclass(frozen=True)
class Drive:
    """What a kind needs to drive a job: the grid, the admission, and the ServerApp's
    hooks (progress, each node's answer, the coordinator's audit head, reply seals)."""

    grid: Grid
    job_id: str
    admission: QuoteOutcome
    emit: Emit
    on_reply: OnReply
    head: HeadSource
    check: ReplyCheck
    claim: Claimer = no_claim


@dataclass(frozen=True)
class Finished:
    """A job as it ended: its status, the rendered bundle (file name -> bytes), the
    headline figures shown to the analyst, and how long it took."""

    status: str
    failure: str
    files: dict[str, bytes]
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class CoordinatorKind(abc.ABC, Generic[SpecT]):
    """One job kind at the coordinator."""

    spec_type: type[SpecT]

    @abc.abstractmethod
    def run(self, spec: SpecT, drive: Drive) -> Finished:
        """Drives the admitted job to its end and renders its bundle; never raises for a
        node's failure (a refusal or silence is recorded and the job goes on or fails)."""

    def quote_preview(self, spec: SpecT, nodes: int) -> QuotePreview:
        """Public figures a quote shows beside the nodes' prices (e.g. the expected
        interval half-widths of a statistics job's cells across `nodes` nodes)."""
        return QuotePreview()
