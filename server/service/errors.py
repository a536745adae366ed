"""The service's own domain errors; `interceptor.status_for` maps each to one status code."""

from __future__ import annotations

from vocab.errors import SilobridgeError

__all__ = ["Conflict", "NotFound", "RateLimited", "Unavailable"]


class NotFound(SilobridgeError):
    """The named job (or file) does not exist, or is not the caller's to see."""


class Conflict(SilobridgeError):
    """The call does not fit the object's state (e.g. the result of a job still running)."""


class RateLimited(SilobridgeError):
    """The caller submitted more jobs than the service allows per hour."""


class Unavailable(SilobridgeError):
    """The federation cannot be reached right now (no relay run); try again shortly."""
