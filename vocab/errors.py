"""Typed errors shared by coordinator and nodes; each carries what went wrong and the fix."""

from __future__ import annotations

import enum


class RefusalCode(enum.Enum):
    """Why a node declined a job; travels in refusal replies and lands in result.json."""

    BUDGET_EXCEEDED = "budget_exceeded"
    DATA_INVALID = "data_invalid"
    POLICY = "policy"
    CONFIG_INVALID = "config_invalid"
    SPEC_INVALID = "spec_invalid"
    BUSY = "busy"
    ROUND_FAILED = "round_failed"
    """Training started and then failed; the round stays charged and is never retrained."""
    APP_NOT_APPROVED = "app_not_approved"
    """The run's app bundle is not on the node officer's signed allowlist; none of it ran."""
    OTHER_DATASET = "other_dataset"
    """The job asks for a dataset the node does not hold; the node takes no part."""
    UNCLAIMED = "unclaimed"
    """The job is not signed by the coordinator key the node's officer trusts; nothing of
    it ran (`vocab.job_claim`)."""
    INTERNAL = "internal"


class SilobridgeError(Exception):
    """A user-facing error: `message` says what is wrong, `hint` says what to do.

    `public`, when set, is what a node may say about the error in a refusal: the message
    and hint stay in the node's log when they quote node-local paths, rows or values.
    """

    code: RefusalCode = RefusalCode.INTERNAL

    def __init__(self, message: str, hint: str = "", *, public: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.public = public

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(SilobridgeError):
    """A node config, job spec or flag is invalid."""

    code = RefusalCode.CONFIG_INVALID


class JobSpecError(ConfigError):
    """A job specification is invalid."""

    code = RefusalCode.SPEC_INVALID


class DataError(SilobridgeError):
    """The node's data cannot be read or does not match its declared schema."""

    code = RefusalCode.DATA_INVALID


class PolicyRefusal(SilobridgeError):
    """The job would use a column the node's classification forbids."""

    code = RefusalCode.POLICY


class BudgetExceeded(SilobridgeError):
    """A release would push the dataset past its privacy budget.

    Amounts are epsilons at the budget's delta: `spent` is what the ledger already holds,
    `after` the ledger with the asked releases composed (what the cap is checked against),
    `requested` the releases on their own, `remaining` the budget minus spent.
    """

    code = RefusalCode.BUDGET_EXCEEDED

    def __init__(
        self,
        *,
        requested: float,
        spent: float,
        remaining: float,
        budget: float,
        scope: str,
        after: float,
    ) -> None:
        self.requested = requested
        self.spent = spent
        self.remaining = remaining
        self.budget = budget
        self.after = after
        super().__init__(
            f"{scope} would bring epsilon spent from {spent:.4f} to {after:.4f}, above the "
            f"cap {budget:.4f}",
            "ask the department's privacy officer for more budget, or lower the job's "
            "epsilon / rounds",
        )


class InternalError(Exception):
    """A broken invariant: this is a bug in silobridge, never a user mistake."""

    def __init__(self, message: str) -> None:
        super().__init__(f"bug: {message}")
