"""The API's one gate: authenticate the caller, authorize the call, map domain errors to
gRPC status codes.

Every call passes here first: the caller comes from the client certificate the TLS
handshake verified (`identity.caller_from_auth_context`), the role is checked against
`authorization.ALLOWED`, and a refusal is audited before the caller hears it. Errors the
servicers raise keep their type until here, where each maps to one status code; anything
else is a bug and becomes INTERNAL without its details.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from server.service.authorization import authorize
from server.service.errors import Conflict, NotFound, RateLimited, Unavailable
from server.service.identity import (
    Caller,
    PermissionDenied,
    Unauthenticated,
    caller_from_auth_context,
)
from vocab.errors import BudgetExceeded, ConfigError, SilobridgeError

__all__ = ["DeniedHook", "ServiceInterceptor", "status_for"]

log = logging.getLogger(__name__)

DeniedHook = Callable[[str, str, str, str], None]
"""(caller label or "", method, status name, reason): a refused call, to audit."""


_STATUS: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (RateLimited, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (BudgetExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ConfigError, grpc.StatusCode.INVALID_ARGUMENT),
    (SilobridgeError, grpc.StatusCode.FAILED_PRECONDITION),
)


def status_for(err: BaseException) -> grpc.StatusCode:
    """The status code a domain error maps to (INTERNAL for anything unexpected)."""
    for kind, code in _STATUS:
        if isinstance(err, kind):
            return code
    return grpc.StatusCode.INTERNAL


def _abort(context: grpc.ServicerContext, err: BaseException, method: str) -> None:
    code = status_for(err)
    if code is grpc.StatusCode.INTERNAL:
        log.exception("bug serving %s", method, exc_info=err)
        context.abort(code, f"internal error ({type(err).__name__}); the service log has it")
    context.abort(code, str(err)[:2000])


class ServiceInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Authenticates, authorizes and maps errors for every unary and server-streaming call.

    Args:
        on_denied: Called for every unauthenticated or unauthorized call (to audit it);
            its own failure is logged and the refusal still goes out.
    """

    def __init__(self, on_denied: DeniedHook | None = None) -> None:
        self._on_denied = on_denied

    def _admit(self, context: grpc.ServicerContext, method: str) -> Caller:
        caller: Caller | None = None
        try:
            caller = caller_from_auth_context(context.auth_context())
            authorize(caller, method)
            return caller
        except (Unauthenticated, PermissionDenied) as err:
            if self._on_denied is not None:
                try:
                    self._on_denied(
                        caller.label() if caller else "", method, status_for(err).name, str(err)
                    )
                except Exception:  # an audit failure must not let the call through
                    log.exception("cannot audit a refused call to %s", method)
            _abort(context, err, method)
            raise  # abort raised already; keeps the type checker sure

    def intercept_service(
        self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        if handler.unary_unary is not None:
            inner_unary = handler.unary_unary

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                self._admit(context, method)
                try:
                    return inner_unary(request, context)
                except Exception as err:
                    if _aborted(context):
                        raise
                    _abort(context, err, method)

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                self._admit(context, method)
                try:
                    yield from inner_stream(request, context)
                except Exception as err:
                    if _aborted(context):
                        raise
                    _abort(context, err, method)

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler  # no client-streaming calls in this API


def _aborted(context: grpc.ServicerContext) -> bool:
    """Whether the servicer already aborted (grpc raises a plain Exception for that)."""
    code = getattr(context, "code", lambda: None)()
    return code is not None and code is not grpc.StatusCode.OK
