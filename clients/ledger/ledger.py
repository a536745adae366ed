"""The node's privacy ledger interface: every release is checked, reserved, then committed.

One ledger per dataset. It keeps the officer's budgets - a total per period, optional
per-purpose sub-budgets and per-analyst caps - and every release's mechanism parameters, and
recomputes each scope's epsilon from those parameters for every decision.
"""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from vocab.errors import BudgetExceeded, PolicyRefusal, RefusalCode, SilobridgeError
from vocab.privacy import Budget, PrivacyEvent
from vocab.wire import ScopeQuote

__all__ = [
    "ApprovalCap",
    "ApprovalExhausted",
    "BudgetChange",
    "DuplicateRelease",
    "EntryStatus",
    "Ledger",
    "LedgerEntry",
    "Quote",
    "Requester",
    "Reservation",
    "Scope",
    "ScopeBudget",
    "ScopeKind",
    "normalize_key",
]


class EntryStatus(enum.Enum):
    """Where a ledger entry is in check, reserve, release, commit."""

    RESERVED = "reserved"
    """Charged but not yet resolved; counts as spent so a crash cannot hide a release."""
    COMMITTED = "committed"
    """Released; counts as spent forever."""
    CANCELLED = "cancelled"
    """Nothing was released; does not count."""


class ScopeKind(enum.Enum):
    """What a budget bounds, within the current period of one dataset."""

    PERIOD = "period"
    """Everything released on the dataset in the period (the officer's total)."""
    PURPOSE = "purpose"
    """Releases for jobs that declare this purpose."""
    ANALYST = "analyst"
    """Releases for jobs submitted by this analyst."""


def normalize_key(key: str) -> str:
    """How purposes and analyst names are matched: case-folded, whitespace collapsed.

    "Fraud  screening" and "fraud screening" must draw on one sub-budget, or a typo would
    escape it.
    """
    return " ".join(key.split()).casefold()


@dataclass(frozen=True)
class Scope:
    """One budget's reach; for a PERIOD scope the key is the period's name.

    Purpose and analyst keys are normalised (`normalize_key`).
    """

    kind: ScopeKind
    key: str

    def __post_init__(self) -> None:
        if self.kind is not ScopeKind.PERIOD:
            object.__setattr__(self, "key", normalize_key(self.key))

    @property
    def label(self) -> str:
        return f"{self.kind.value} {self.key}"


@dataclass(frozen=True)
class ScopeBudget:
    """A budget the officer set on a scope of the current period."""

    scope: Scope
    budget: Budget
    set_at: datetime


@dataclass(frozen=True)
class Requester:
    """Who a release is for: the job's declared purpose, analyst and project."""

    purpose: str = ""
    analyst: str = ""
    project: str = ""

    def __post_init__(self) -> None:
        for name in ("purpose", "analyst", "project"):
            object.__setattr__(self, name, normalize_key(getattr(self, name)))


@dataclass(frozen=True)
class ApprovalCap:
    """A signed approval a job runs under: its digest, and the total epsilon (at the
    dataset's delta) that every job using it may spend together."""

    digest: str
    epsilon: float


class ApprovalExhausted(PolicyRefusal):
    """A release would take the jobs that use an approval past the approval's total epsilon.

    The message names no figure of the approval (a refusal never says what an approval
    allows); the figures are attributes, for the node's own log.
    """

    def __init__(self, *, job_id: str, digest: str, epsilon: float, spent_after: float) -> None:
        self.digest = digest
        self.epsilon = epsilon
        self.spent_after = spent_after
        super().__init__(
            f"job {job_id!r} would take the signed approval of its conditional columns past "
            "the total epsilon it allows over every job that uses it",
            "ask the department's privacy officer for a new approval of this spec",
        )


class DuplicateRelease(SilobridgeError):
    """A job asked for a round the node has already answered (or is answering)."""

    code = RefusalCode.POLICY

    def __init__(self, *, dataset: str, job_id: str, round: int, why: str = "") -> None:
        self.dataset = dataset
        self.job_id = job_id
        self.round = round
        super().__init__(
            f"job {job_id!r} round {round} on dataset {dataset!r} was already answered"
            + (f" ({why})" if why else "")
            + "; the node makes no second release for the same round",
            "start a new round or a new job; a retried round is never released twice",
        )


@dataclass(frozen=True)
class Quote:
    """What a set of releases would cost, computed without changing the ledger.

    Attributes:
        requested: The releases on their own, as epsilon at the period budget's delta.
        scopes: Every budget the releases would draw on, period total first.
    """

    requested: float
    scopes: tuple[ScopeQuote, ...]

    @property
    def fits(self) -> bool:
        """Whether every scope stays within its budget."""
        return all(s.fits for s in self.scopes)

    @property
    def binding(self) -> ScopeQuote:
        """The first scope that does not fit, else the period total."""
        return next((s for s in self.scopes if not s.fits), self.scopes[0])

    def refusal(self, what: str) -> BudgetExceeded:
        """The refusal for the binding scope; `what` names the releases asked for."""
        scope = self.binding
        if math.isinf(scope.requested) and scope.delta == 0:
            return BudgetExceeded(
                requested=scope.requested,
                spent=scope.spent,
                remaining=scope.remaining,
                budget=scope.epsilon,
                scope=f"{what} (budget: {scope.scope}, whose delta is 0: Gaussian noise and "
                "DP-SGD have no finite epsilon there; only Laplace releases fit)",
                after=scope.spent_after,
            )
        return BudgetExceeded(
            requested=scope.requested,
            spent=scope.spent,
            remaining=scope.remaining,
            budget=scope.epsilon,
            scope=f"{what} (budget: {scope.scope})",
            after=scope.spent_after,
        )


@dataclass(frozen=True)
class Reservation:
    """A release charged to the ledger but not yet committed or cancelled.

    `resumed` is True when the reservation was left by an attempt whose process died
    before committing (so nothing was released) and this attempt carries it on.
    """

    entry_id: int
    job_id: str
    round: int
    event: PrivacyEvent
    resumed: bool = False


@dataclass(frozen=True)
class LedgerEntry:
    """One stored release: its mechanism, who asked, and where it stands."""

    entry_id: int
    dataset: str
    period: str
    job_id: str
    round: int
    requester: Requester
    event: PrivacyEvent
    status: EntryStatus
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class BudgetChange:
    """A budget set on a scope: by the node config (`config`) or the officer (`officer`)."""

    dataset: str
    scope: Scope
    old: Budget | None
    new: Budget
    source: str
    changed_at: datetime


class Ledger(abc.ABC):
    """One dataset's privacy ledger at a node.

    Epsilon is always recomputed from the stored mechanism parameters of every reserved
    and committed release at the scope's delta; the ledger never trusts an epsilon someone
    claims.
    """

    @property
    @abc.abstractmethod
    def dataset(self) -> str:
        """The dataset this ledger charges."""

    @abc.abstractmethod
    def period(self) -> str:
        """The name of the current budget period."""

    @abc.abstractmethod
    def budget(self) -> Budget:
        """The current period's total budget."""

    @abc.abstractmethod
    def budgets(self) -> list[ScopeBudget]:
        """Every budget of the current period, period total first."""

    @abc.abstractmethod
    def spent(self, scope: Scope | None = None) -> float:
        """Epsilon of the scope's reserved and committed releases (default: period total)."""

    @abc.abstractmethod
    def lifetime_spent(self) -> float:
        """Epsilon of every live release of every period, at the current total's delta.

        Periods reset what the officer allows; they do not reset what a person in the
        data has lost. This is the figure that bounds that loss.
        """

    def remaining(self) -> float:
        """The period total minus `spent()`, floored at 0."""
        return max(0.0, self.budget().epsilon - self.spent())

    @abc.abstractmethod
    def quote(self, events: Sequence[PrivacyEvent], requester: Requester | None = None) -> Quote:
        """What `events` would cost on top of the ledger, per scope; changes nothing."""

    @abc.abstractmethod
    def reserve(
        self,
        job_id: str,
        round: int,
        event: PrivacyEvent,
        requester: Requester | None = None,
        fingerprint: str = "",
        job_budget: Budget | None = None,
        approvals: Sequence[ApprovalCap] = (),
    ) -> Reservation:
        """Charges `event` for a job's round, atomically with the check of every scope.

        A round whose earlier attempt died between reserve and commit (its process is
        gone, so it released nothing) is resumed under the same charge, never charged
        again - if the retry carries the same job spec (`fingerprint`) and parameters.
        In the same transaction: a job id names one spec (`fingerprint`), and with
        `job_budget` the job's live releases and `event` composed stay within it; the job
        is recorded as a user of each of `approvals`, and the live releases of every job
        using one, with `event`, stay within its total. A resumed round counts once.

        Raises:
            BudgetExceeded: If some scope's releases and `event` composed exceed its budget.
            DuplicateRelease: If the round was committed, or is being answered right now.
            ApprovalExhausted: If the jobs using an approval would pass its total.
            PolicyRefusal: If the job id carries another spec, or the job would pass
                `job_budget`.
        """

    @abc.abstractmethod
    def check_approvals(
        self, job_id: str, events: Sequence[PrivacyEvent], approvals: Sequence[ApprovalCap]
    ) -> None:
        """Dry run of `reserve`'s approval check: would `events` for `job_id` fit every one?

        Raises:
            ApprovalExhausted: The jobs using an approval (this one included) and `events`
                would pass its total.
        """

    @abc.abstractmethod
    def approval_spent(self, digest: str) -> float:
        """Epsilon (at the dataset's delta) of the live releases of every job that used an
        approval."""

    @abc.abstractmethod
    def commit(self, reservation: Reservation, reply: bytes | None = None) -> None:
        """Marks a reserved release as released, storing the reply that carries it.

        The stored reply makes the round idempotent: a retry gets these bytes again
        (`stored_reply`), with no new release and no new charge.

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
    def stored_reply(self, job_id: str, round: int, fingerprint: str = "") -> bytes | None:
        """The reply committed for a job's round, if any.

        Raises:
            DuplicateRelease: If the round was committed for another job spec.
        """

    @abc.abstractmethod
    def has_reservation(self, job_id: str, round: int) -> bool:
        """Whether a job's round is reserved and not yet committed or cancelled."""

    @abc.abstractmethod
    def job_events(self, job_id: str) -> list[PrivacyEvent]:
        """One job's reserved and committed releases."""

    @abc.abstractmethod
    def history(self) -> list[LedgerEntry]:
        """All entries of the dataset, cancelled ones included, oldest first."""

    @abc.abstractmethod
    def entry(self, entry_id: int) -> LedgerEntry | None:
        """One entry of the dataset as it stands now (the audit log records its digest)."""

    @abc.abstractmethod
    def job_epsilon(self, job_id: str) -> float:
        """Epsilon of one job's reserved and committed releases alone."""

    @abc.abstractmethod
    def budget_changes(self) -> list[BudgetChange]:
        """Every budget set on the dataset, oldest first."""

    @abc.abstractmethod
    def set_budget(self, scope: Scope, budget: Budget, source: str = "officer") -> None:
        """Sets a budget of the current period (its total, a purpose's, an analyst's).

        Raises:
            ConfigError: If a PERIOD scope names a period other than the current one.
        """

    @abc.abstractmethod
    def open_period(self, name: str, total: Budget) -> None:
        """Starts a new period with its total; earlier periods' releases stop counting
        against the new period's budgets (they still count in `lifetime_spent`).

        Raises:
            ConfigError: If a period of that name already exists.
        """
