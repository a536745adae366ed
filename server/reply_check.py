"""Which department a reply speaks for: the one whose registered node key sealed it.

A reply's report names a department; the coordinator believes it only if the reply carries
a seal (`vocab/reply_seal.py`) by the identity key registered for that department
(`silobridge node register`, `server/node_registry.py`), over this very job, round and
message kind. An unregistered department, a missing or wrong seal, or one node id speaking
for a second department is not an answer: it meets no quorum and its weights are dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from flwr.app import RecordDict

from server.node_registry import NodeRegistry
from vocab.errors import ConfigError
from vocab.reply_seal import seal_verifies

__all__ = ["ReplyCheck", "registered_nodes"]

ReplyCheck = Callable[[RecordDict, str, str, int, str], str | None]
"""(reply content, department claimed, job id, round, message kind) -> why the reply is
not believed, or None when the department's registered key sealed exactly this reply."""


def registered_nodes(registry: NodeRegistry) -> ReplyCheck:
    """The check against the node keys registered in `registry`."""

    def check(content: RecordDict, department: str, job_id: str, rnd: int, kind: str) -> str | None:
        try:
            identity = registry.identity_of(department)
        except ConfigError as err:
            return f"the reply names department {department[:60]!r}, which cannot be checked: {err}"
        if identity is None:
            return (
                f"no node key is registered for {department!r}, so its replies cannot be "
                "believed; the coordinator's operator enrols it with `silobridge node register`"
            )
        if not seal_verifies(content, identity, job_id=job_id, round=rnd, kind=kind):
            return (
                f"the reply claims to speak for {department!r} but is not sealed by its "
                f"registered node key {identity.key_id} for this message"
            )
        return None

    return check
