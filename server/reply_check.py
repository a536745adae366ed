"""Which department a reply speaks for: the one whose registered node key sealed it.

A reply's report names a department; the coordinator believes it only if the reply carries
a seal (`vocab/reply_seal.py`) by the identity key registered for that department
(`silobridge node register`, `server/home/node_registry.py`), over this very job, round and
message kind. An unregistered department, a missing or wrong seal, or one node id speaking
for a second department is not an answer: it meets no quorum and its weights are dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from flwr.app import RecordDict

from server.home.node_registry import NodeRegistry
from vocab.errors import ConfigError
from vocab.reply_seal import seal_verifies
from vocab.wire import REPORT

__all__ = ["ReplyCheck", "claimed_department", "registered_nodes"]

ReplyCheck = Callable[[RecordDict, str, str, int, str, str], str | None]
"""(reply content, department claimed, job id, round, message kind, digest of the request
sent) -> why the reply is not believed, or None when the department's registered key
sealed exactly this reply to exactly that request."""


def claimed_department(content: RecordDict) -> str:
    """The department a reply's report names, as text ("" when it names none)."""
    report = content.config_records.get(REPORT)
    value = report.get("department") if report is not None else None
    return value if isinstance(value, str) else ""


def registered_nodes(registry: NodeRegistry) -> ReplyCheck:
    """The check against the node keys registered in `registry`.

    Never raises: a reply is untrusted input, and no reply may end a job.
    """

    def check(
        content: RecordDict, department: str, job_id: str, rnd: int, kind: str, request: str
    ) -> str | None:
        try:
            return _checked(content, department, job_id, rnd, kind, request)
        except Exception as err:  # e.g. arrays that do not decode while the digest is taken
            return f"the reply cannot be checked ({type(err).__name__}: {str(err)[:200]})"

    def _checked(
        content: RecordDict, department: str, job_id: str, rnd: int, kind: str, request: str
    ) -> str | None:
        if not department:
            return "the reply names no department"
        try:
            identity = registry.identity_of(department)
        except ConfigError as err:
            return f"the reply names department {department[:60]!r}, which cannot be checked: {err}"
        if identity is None:
            return (
                f"no node key is registered for {department!r}, so its replies cannot be "
                "believed; the coordinator's operator enrols it with `silobridge node register`"
            )
        sealed = seal_verifies(
            content, identity, job_id=job_id, round=rnd, kind=kind, request=request
        )
        if not sealed:
            return (
                f"the reply claims to speak for {department!r} but is not sealed by its "
                f"registered node key {identity.key_id} for this message"
            )
        return None

    return check
