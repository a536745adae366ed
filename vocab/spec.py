"""The job envelope: what every job kind shares, and the registry of kinds.

A job spec is an envelope - name, purpose, analyst, project, the per-node (epsilon, delta)
guarantee, quorum and timeouts - plus a payload that only its kind understands. Every kind
is a frozen dataclass deriving from `JobEnvelope`; pricing, admission, reservation, commit
and audit look at the envelope alone, and the kind supplies the rest (see ARCHITECTURE.md).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from vocab.errors import JobSpecError
from vocab.privacy import Budget

__all__ = [
    "ENVELOPE_KEYS",
    "NAME_RE",
    "JobEnvelope",
    "check_positive_float",
    "check_positive_int",
    "job_table",
    "read_spec_file",
]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""Job, analyst and project names: what ledgers, caps and approvals key on."""

ENVELOPE_KEYS = frozenset(
    {"name", "kind", "purpose", "analyst", "project", "epsilon", "delta", "min_nodes",
     "seed", "round_timeout_s", "node_wait_s", "dataset"}
)  # fmt: skip
"""The [job] keys every kind accepts."""


def check_positive_int(value: Any, name: str, upper: int, table: str = "[job]") -> None:
    """Raises JobSpecError unless `value` is an integer in [1, upper]."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise JobSpecError(
            f"job `{name}` must be an integer in [1, {upper}], got {value!r}",
            f"set `{name}` in {table}",
        )


def check_positive_float(value: Any, name: str, table: str = "[job]") -> None:
    """Raises JobSpecError unless `value` is a positive finite number."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value > 0)
    ):
        raise JobSpecError(
            f"job `{name}` must be a positive finite number, got {value!r}",
            f"set `{name}` in {table}",
        )


def _as_budget(epsilon: float, delta: float) -> Budget:
    try:
        return Budget(epsilon, delta)
    except Exception as err:  # re-typed: the spec names the field
        raise JobSpecError(f"job privacy target: {err}", "fix `epsilon`/`delta` in [job]") from err


@dataclass(frozen=True, kw_only=True)
class JobEnvelope:
    """What every job kind carries; `epsilon`/`delta` is each node's guarantee for the job.

    Subclasses set `KIND`, add their payload fields, list the columns they read in
    `columns` and validate their payload in `validate_payload`.
    """

    KIND: ClassVar[str] = ""

    name: str
    purpose: str = ""
    # Who asks and for which project: budgets and caps are kept per analyst and project.
    analyst: str = ""
    project: str = ""
    epsilon: float = 1.0
    delta: float = 1e-5
    min_nodes: int = 2
    seed: int = 0
    round_timeout_s: float = 900.0
    node_wait_s: float = 120.0
    # The dataset the job asks for; a node holding another one takes no part. "": any.
    dataset: str = ""
    _budget: Budget = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_budget", _as_budget(self.epsilon, self.delta))
        self._validate_envelope()
        self.validate_payload()

    @property
    def kind(self) -> str:
        """The job kind's name, as a spec's `kind` key and the message types spell it."""
        return self.KIND

    @property
    def budget(self) -> Budget:
        """The per-node (epsilon, delta) guarantee this job asks for."""
        return self._budget

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the job reads at a node, in a stable order."""
        raise NotImplementedError

    @property
    def message_rounds(self) -> int:
        """How many rounds of messages the job sends each node (1 for a one-shot kind)."""
        return 1

    def validate_payload(self) -> None:
        """Raises JobSpecError, naming the key and the fix, for an invalid payload."""

    def _validate_envelope(self) -> None:
        if not isinstance(self.name, str) or not NAME_RE.fullmatch(self.name):
            raise JobSpecError(
                f"job name {self.name!r} is not allowed",
                "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            )
        for key in ("analyst", "project"):
            value = getattr(self, key)
            if not isinstance(value, str) or (value and not NAME_RE.fullmatch(value)):
                raise JobSpecError(
                    f"job `{key}` {value!r} is not allowed",
                    "use 1-64 letters, digits, '.', '_' or '-', or leave it out",
                )
        if not isinstance(self.dataset, str) or (
            self.dataset and not NAME_RE.fullmatch(self.dataset)
        ):
            raise JobSpecError(
                f"job `dataset` {self.dataset!r} is not allowed",
                "name a dataset as its nodes' configs do ([data] dataset), or leave it out",
            )
        if not isinstance(self.purpose, str) or len(self.purpose) > 200:
            raise JobSpecError("job `purpose` must be a string of at most 200 characters")
        check_positive_int(self.min_nodes, "min_nodes", 10_000)
        for name in ("round_timeout_s", "node_wait_s"):
            check_positive_float(getattr(self, name), name)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise JobSpecError(f"job `seed` must be a non-negative integer, got {self.seed!r}")


def job_table(
    doc: dict[str, Any],
    *,
    source: str,
    kind: str,
    tables: Iterable[str],
    keys: Iterable[str],
    required: Iterable[str] = ("name",),
) -> dict[str, Any]:
    """The `[job]` table of a spec document of `kind`, checked: only `tables` at the top
    level, only `keys` in `[job]`, the kind named (a risk spec may leave it out), and each
    of `required` a non-empty string.

    Raises:
        JobSpecError: naming the table or key and the fix.
    """
    allowed_tables, allowed_keys = set(tables), set(keys)
    unknown_tables = set(doc) - allowed_tables
    if unknown_tables:
        raise JobSpecError(
            f"{source}: unknown table(s) {sorted(unknown_tables)}",
            f"a {kind} job spec has the tables {sorted(allowed_tables)}",
        )
    job = doc.get("job")
    if not isinstance(job, dict):
        raise JobSpecError(f"{source}: missing [job] table", "see docs/job-spec.md")
    unknown = set(job) - allowed_keys
    if unknown:
        raise JobSpecError(
            f"{source}: unknown key(s) in [job]: {sorted(unknown)}",
            f"allowed keys: {sorted(allowed_keys)}",
        )
    named = job.get("kind", "risk")
    if named != kind:
        raise JobSpecError(
            f"{source}: [job] kind is {named!r}, not {kind!r}", f'set kind = "{kind}" in [job]'
        )
    for key in required:
        if not isinstance(job.get(key), str) or not job[key]:
            raise JobSpecError(f"{source}: [job] needs `{key}` (a string)")
    return job


def read_spec_file(path: Path) -> dict[str, Any]:
    """A spec file's TOML document.

    Raises:
        JobSpecError: The file cannot be read or is not valid TOML.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise JobSpecError(
            f"cannot read job spec {path}: {err.strerror}", "check the path"
        ) from err
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise JobSpecError(f"job spec {path} is not valid TOML: {err}") from err
