"""The environment variable that names the coordinator home (dependency-free).

The ServerApp launcher reads it before a run's bundle is approved, so importing it must
not load the coordinator's own modules (or their protobuf descriptors) into that process.
"""

from __future__ import annotations

__all__ = ["HOME_ENV"]

HOME_ENV = "SILOBRIDGE_COORDINATOR_HOME"
