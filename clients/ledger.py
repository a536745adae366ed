"""The node's privacy ledger interface: every release is checked, reserved, then committed."""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from vocab.errors import RefusalCode, SilobridgeError
from vocab.privacy import Budget, DpSgdEvent

__all__ = [
    "BudgetChange",
    "DuplicateRelease",
    "EntryStatus",
    "Ledger",
    "LedgerEntry",
    "Quote",
    "Reservation",
]


class EntryStatus(enum.Enum):
    """Where a ledger entry is in check, reserve, release, commit."""

    RESERVED = "reserved"
    """Charged but not yet resolved; counts as spent so a crash cannot hide a release."""
    COMMITTED = "committed"
    """Released; counts as spent forever."""
    CANCELLED = "cancelled"
    """Nothing was released; does not count."""


class DuplicateRelease(SilobridgeError):
    """A job asked for a round the node has already answered (or is answering)."""

    code = RefusalCode.POLICY

    def __init__(self, *, dataset: str, job_id: str, round: int) -> None:
        self.dataset = dataset
        self.job_id = job_id
        self.round = round
        super().__init__(
            f"job {job_id!r} round {round} on dataset {dataset!r} was already answered; "
            "the node makes no second release for the same round",
            "start a new round or a new job; a retried round is never released twice",
        )


@dataclass(frozen=True)
class Quote:
    """What a set of releases would cost, computed without changing the ledger.

    All amounts are epsilons at the budget's delta.

    Attributes:
        requested: The releases on their own.
        spent: The ledger's reserved and committed releases.
        spent_after: The ledger's releases and the requested ones composed; less than
            `spent + requested` because RDP composes more tightly than adding epsilons.
        remaining: Budget epsilon minus `spent`, floored at 0.
        budget: The dataset's budget.
        fits: Whether `spent_after` is within the budget's epsilon.
    """

    requested: float
    spent: float
    spent_after: float
    remaining: float
    budget: Budget
    fits: bool


@dataclass(frozen=True)
class Reservation:
    """A release charged to the ledger but not yet committed or cancelled."""

    entry_id: int
    job_id: str
    round: int
    event: DpSgdEvent


@dataclass(frozen=True)
class LedgerEntry:
    """One stored row: the mechanism parameters of a release and where it stands."""

    entry_id: int
    dataset: str
    job_id: str
    round: int
    noise_multiplier: float
    sample_rate: float
    steps: int
    status: EntryStatus
    created_at: datetime
    updated_at: datetime

    @property
    def event(self) -> DpSgdEvent:
        """The release this entry charges."""
        return DpSgdEvent(
            noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate, steps=self.steps
        )


@dataclass(frozen=True)
class BudgetChange:
    """The node config set a dataset's budget to a value other than the recorded one."""

    dataset: str
    old: Budget
    new: Budget
    changed_at: datetime


class Ledger(abc.ABC):
    """One dataset's privacy ledger at a node.

    Epsilon is always recomputed from the stored mechanism parameters of every reserved
    and committed release - all rounds of all jobs - at the budget's delta; the ledger never
    trusts an epsilon someone claims.
    """

    @property
    @abc.abstractmethod
    def dataset(self) -> str:
        """The dataset this ledger charges."""

    @abc.abstractmethod
    def budget(self) -> Budget:
        """The dataset's budget as currently recorded."""

    @abc.abstractmethod
    def spent(self) -> float:
        """Epsilon of all reserved and committed releases composed."""

    def remaining(self) -> float:
        """Budget epsilon minus `spent()`, floored at 0."""
        return max(0.0, self.budget().epsilon - self.spent())

    @abc.abstractmethod
    def quote(self, events: Sequence[DpSgdEvent]) -> Quote:
        """What `events` would cost on top of the ledger; changes nothing."""

    @abc.abstractmethod
    def reserve(self, job_id: str, round: int, event: DpSgdEvent) -> Reservation:
        """Charges `event` for a job's round, atomically with the budget check.

        Raises:
            BudgetExceeded: If the ledger's releases and `event` composed exceed the budget.
            DuplicateRelease: If the round already has a reserved or committed entry.
        """

    @abc.abstractmethod
    def commit(self, reservation: Reservation) -> None:
        """Marks a reserved release as released.

        Raises:
            InternalError: If the entry is not in the reserved state.
        """

    @abc.abstractmethod
    def cancel(self, reservation: Reservation) -> None:
        """Returns a reservation's budget because nothing was released.

        Raises:
            InternalError: If the entry is not in the reserved state.
        """

    @abc.abstractmethod
    def history(self) -> list[LedgerEntry]:
        """All entries of the dataset, cancelled ones included, oldest first."""

    @abc.abstractmethod
    def job_epsilon(self, job_id: str) -> float:
        """Epsilon of one job's reserved and committed releases alone."""

    @abc.abstractmethod
    def budget_changes(self) -> list[BudgetChange]:
        """Every change of the dataset's recorded budget, oldest first."""
