"""The keys `silobridge node start` sets in Flower's --node-config, read by every app process.

Dependency-free on purpose: the app gate reads them before it knows whether the run's
bundle may load, and must import as little of the node's own code as it can by then.
"""

from __future__ import annotations

__all__ = ["CONFIG_KEY", "DEPARTMENT_KEY"]

CONFIG_KEY = "silobridge-config"
DEPARTMENT_KEY = "department"
