"""The central privacy officer's caps per analyst and per project: interface and value types.

What a cap means. A cap of epsilon E on analyst A bounds, for each department dataset, the
total epsilon that A's jobs may charge to that dataset. The coordinator cannot see inside
the node ledgers, so it counts conservatively: a job counts at its full requested epsilon
(`spec.epsilon`, each node's guarantee for the whole job) from the moment it is admitted,
and jobs add up by basic composition (a plain sum), which bounds what any one dataset can
have spent on A's jobs. When the job ends, its charge is settled down to the largest
epsilon any node reported charging for it, never above what was reserved. Project caps
work the same way, keyed by the job's project.

Check, then commit: `check` prices a job without changing anything (dry-run quotes);
`reserve` checks and records the job in one transaction, so of two jobs racing for the
last of a cap exactly one is admitted. Nodes still enforce their own budgets: the central
cap can only refuse more, never allow more.
"""

from __future__ import annotations

import abc
import enum
import math
from dataclasses import dataclass
from datetime import datetime

from vocab.errors import BudgetExceeded, ConfigError
from vocab.jobspec import NAME_RE

__all__ = [
    "UNNAMED",
    "Cap",
    "CapChange",
    "CapCheck",
    "CapExceeded",
    "CapKind",
    "CapStanding",
    "CentralBudget",
    "CentralCheck",
    "ChargeStatus",
    "JobCharge",
    "validate_cap",
]


UNNAMED = "(none named)"
"""The analyst a job naming none is checked as, once analysts are capped (at a cap of 0)."""


class CapKind(enum.Enum):
    """Who a central cap applies to."""

    ANALYST = "analyst"
    PROJECT = "project"


class ChargeStatus(enum.Enum):
    """Where a job's central charge stands."""

    RESERVED = "reserved"
    """Admitted and counted at its full requested epsilon (also if the coordinator died)."""
    SETTLED = "settled"
    """Ended; counted at the largest epsilon a node reported charging for it."""


class CapExceeded(BudgetExceeded):
    """A job would take an analyst or project past its central cap."""

    def __init__(
        self, *, requested: float, spent: float, remaining: float, budget: float, scope: str
    ) -> None:
        # Central caps add jobs' epsilons: after is spent plus the job.
        super().__init__(
            requested=requested, spent=spent, remaining=remaining, budget=budget, scope=scope,
            after=spent + requested,
        )  # fmt: skip
        # The central officer, not a department's, decides on this cap.
        self.hint = (
            "ask the central privacy officer to raise the cap (`silobridge budget set`), "
            "or lower the job's epsilon"
        )


def validate_cap(kind: CapKind, key: str, epsilon: float) -> float:
    """The cap as a float, or ConfigError naming what is wrong.

    A cap of 0 is allowed: it stops every further job of that analyst or project.
    """
    if not isinstance(kind, CapKind):
        raise ConfigError(f"cap kind must be a CapKind, got {kind!r}")
    # The names a job spec accepts: a cap on any other key could never apply to a job.
    if not isinstance(key, str) or not NAME_RE.fullmatch(key):
        raise ConfigError(
            f"{kind.value} name {key!r} is not allowed",
            "use the name job specs carry: 1-64 letters, digits, '.', '_' or '-'",
        )
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float):
        raise ConfigError(f"cap epsilon must be a number, got {epsilon!r}")
    value = float(epsilon)
    if not math.isfinite(value) or value < 0:
        raise ConfigError(
            f"cap epsilon must be a finite number >= 0, got {epsilon!r}",
            "give e.g. --epsilon 5; 0 stops every further job",
        )
    return value


@dataclass(frozen=True)
class Cap:
    """One cap as currently set."""

    kind: CapKind
    key: str
    epsilon: float
    updated_at: datetime


@dataclass(frozen=True)
class CapChange:
    """A cap was set; `old` is None when there was none before."""

    kind: CapKind
    key: str
    old: float | None
    new: float
    changed_at: datetime


@dataclass(frozen=True)
class JobCharge:
    """One admitted job's central charge."""

    job_id: str
    analyst: str
    project: str
    requested: float
    charged: float | None
    status: ChargeStatus
    created_at: datetime
    settled_at: datetime | None

    @property
    def counted(self) -> float:
        """What the job counts against caps now: requested while reserved, then charged."""
        if self.status is ChargeStatus.RESERVED or self.charged is None:
            return self.requested
        return self.charged


@dataclass(frozen=True)
class CapStanding:
    """An analyst's or project's charges, and its cap if one is set."""

    kind: CapKind
    key: str
    cap: float | None
    reserved: float
    settled: float

    @property
    def spent(self) -> float:
        return self.reserved + self.settled

    @property
    def remaining(self) -> float | None:
        return None if self.cap is None else max(0.0, self.cap - self.spent)


@dataclass(frozen=True)
class CapCheck:
    """One cap a job is checked against."""

    kind: CapKind
    key: str
    cap: float
    spent: float
    requested: float

    @property
    def after(self) -> float:
        """Spent with this job added (basic composition)."""
        return self.spent + self.requested

    @property
    def remaining(self) -> float:
        return max(0.0, self.cap - self.spent)

    @property
    def fits(self) -> bool:
        # No tolerance: rounding errs toward refusing.
        return self.after <= self.cap

    def refusal(self) -> CapExceeded:
        scope = (
            "the central caps on analysts (the job names no analyst: set `analyst` in its spec)"
            if self.key == UNNAMED
            else f"the central cap of {self.kind.value} {self.key!r}"
        )
        return CapExceeded(
            requested=self.requested,
            spent=self.spent,
            remaining=self.remaining,
            budget=self.cap,
            scope=scope,
        )


@dataclass(frozen=True)
class CentralCheck:
    """A job against every cap that applies to it (none when it names no analyst/project)."""

    requested: float
    checks: tuple[CapCheck, ...]

    @property
    def fits(self) -> bool:
        return all(c.fits for c in self.checks)

    def refusal(self) -> CapExceeded | None:
        """The first cap the job does not fit, as the error to refuse it with."""
        return next((c.refusal() for c in self.checks if not c.fits), None)


class CentralBudget(abc.ABC):
    """The coordinator's per-analyst and per-project caps and the charges against them."""

    @abc.abstractmethod
    def set_cap(self, kind: CapKind, key: str, epsilon: float) -> CapChange:
        """Sets (or replaces) a cap and records the change.

        Raises:
            ConfigError: If the name or the epsilon is not valid (see `validate_cap`).
        """

    @abc.abstractmethod
    def caps(self) -> list[Cap]:
        """Every cap currently set."""

    @abc.abstractmethod
    def standings(self) -> list[CapStanding]:
        """Every analyst and project that has a cap or a charge, with spent and remaining."""

    @abc.abstractmethod
    def history(self) -> list[CapChange]:
        """Every cap change, oldest first."""

    @abc.abstractmethod
    def charges(self) -> list[JobCharge]:
        """Every admitted job's charge, oldest first."""

    @abc.abstractmethod
    def check(self, analyst: str, project: str, epsilon: float) -> CentralCheck:
        """Prices a job of `epsilon` against the caps that apply; changes nothing."""

    @abc.abstractmethod
    def reserve(self, job_id: str, analyst: str, project: str, epsilon: float) -> CentralCheck:
        """Admits a job: checks its caps and records it at `epsilon`, atomically.

        The job is recorded even when no cap applies, so a cap set later counts it. The
        same job reserved again while its reservation is still open (the coordinator service
        resuming it after a crash, same analyst, project and epsilon) keeps that reservation
        and adds nothing.

        Raises:
            CapExceeded: If the job does not fit a cap; nothing is recorded.
            InternalError: If `job_id` was already admitted otherwise (settled, or with
                other figures).
        """

    @abc.abstractmethod
    def settle(self, job_id: str, charged: float) -> JobCharge:
        """Settles an admitted job to `charged` (floored at 0; NaN settles to the request).

        `charged` may exceed the reservation: a node prices a job at its own delta.

        Raises:
            InternalError: If the job was never admitted or is already settled.
        """
