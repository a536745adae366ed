"""Which role may make which API call: the one table the interceptor enforces.

Analysts submit, quote, watch, fetch and cancel jobs (only their own: `job_service`
checks ownership); privacy officers read every job, the caps and the audit log, and set
caps; operators see the nodes. Health checks and reflection are open to any authenticated
caller. A method missing from the table is refused to everyone.
"""

from __future__ import annotations

from server.service.identity import Caller, PermissionDenied, Role

__all__ = ["ALLOWED", "OPEN_SERVICES", "authorize"]

SERVICE = "silobridge.v1.Coordinator"

_ANY = frozenset(Role)
_READERS = frozenset({Role.ANALYST, Role.OFFICER})

ALLOWED: dict[str, frozenset[Role]] = {
    f"/{SERVICE}/WhoAmI": _ANY,
    f"/{SERVICE}/SubmitJob": frozenset({Role.ANALYST}),
    f"/{SERVICE}/QuoteJob": frozenset({Role.ANALYST}),
    f"/{SERVICE}/CancelJob": frozenset({Role.ANALYST}),
    f"/{SERVICE}/GetJob": _READERS,
    f"/{SERVICE}/ListJobs": _READERS,
    f"/{SERVICE}/WatchJob": _READERS,
    f"/{SERVICE}/FetchResult": _READERS,
    f"/{SERVICE}/ListNodes": frozenset({Role.OPERATOR, Role.OFFICER}),
    f"/{SERVICE}/GetCaps": frozenset({Role.OFFICER}),
    f"/{SERVICE}/SetCap": frozenset({Role.OFFICER}),
    f"/{SERVICE}/ReadAudit": frozenset({Role.OFFICER}),
    f"/{SERVICE}/VerifyAudit": frozenset({Role.OFFICER}),
    f"/{SERVICE}/DescribeColumns": _READERS,
}
"""Full method name -> the roles that may call it."""

OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
"""Method prefixes any authenticated caller may use."""


def authorize(caller: Caller, method: str) -> None:
    """Let the call through or raise.

    Raises:
        PermissionDenied: The caller's role may not make this call.
    """
    if method.startswith(OPEN_SERVICES):
        return
    roles = ALLOWED.get(method)
    if roles is None or caller.role not in roles:
        allowed = ", ".join(sorted(r.value for r in roles)) if roles else "no one"
        call = method.rsplit("/", 1)[-1] or method
        raise PermissionDenied(
            f"{caller.label()} may not call {call} (allowed: {allowed})",
            "ask the deployment's operator for a credential of the role this needs",
        )
