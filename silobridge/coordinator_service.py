"""Runs the coordinator as a service: the API (`server.service`), the Flower SuperLink and
its gated ServerApp launcher, supervised, with a graceful stop.

Flower's Control API authenticates no one, so in service mode it listens on loopback only
and only the service submits to it, shipping this installation's released app bundle.
Every job is driven in this process over one long-lived relay run (`flower_relay`). If
the SuperLink (or its launcher) dies, both are started again on the same state; the API
stays up, and a job interrupted at that moment goes back to the queue under its id and
runs again in a new relay run, the nodes answering rounds they already charged from their
ledgers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from server.service.grid_runner import GridRunner
from server.service.serve import RunningService, start_service
from server.service.service_config import ServiceConfig
from silobridge.coordinator_runner import start_coordinator
from silobridge.daemons import CoordinatorAddresses
from silobridge.flower_federation import Federation
from silobridge.flower_relay import FlowerRelay
from silobridge.processes import Daemon, ProcessGroup, free_port

__all__ = ["FlowerSettings", "serve_coordinator"]

log = logging.getLogger(__name__)

SUPERVISE_S = 1.0
"""How often the supervisor looks at the Flower daemons."""


@dataclass(frozen=True)
class FlowerSettings:
    """The SuperLink the service drives: where nodes connect, its TLS, node auth."""

    fleet_address: str
    tls: tuple[Path, Path, Path] | None
    node_auth: bool = True
    runtime_port: int = 0
    control_port: int = 0


def _start_flower(
    group: ProcessGroup, config: ServiceConfig, flower: FlowerSettings,
    addresses: CoordinatorAddresses,
) -> list[Daemon]:  # fmt: skip
    return start_coordinator(
        group, addresses, database=config.home / "superlink.db", flwr_home=config.home / "flwr",
        home=config.home, tls=flower.tls, node_auth=flower.node_auth,
    )  # fmt: skip


def serve_coordinator(
    config: ServiceConfig,
    flower: FlowerSettings,
    *,
    log_dir: Path | None = None,
    grace_s: float = 30.0,
    on_ready: Callable[[RunningService], None] | None = None,
) -> int:
    """Start everything and supervise until SIGTERM or Ctrl-C; returns the exit code.

    On SIGTERM the API reports NOT_SERVING and refuses new calls, running jobs get
    `grace_s` to end (a job still running then is requeued by the next start under its
    id, the nodes answering rounds they already answered from their ledgers), then the
    Flower daemons stop.
    """
    config.home.mkdir(parents=True, exist_ok=True)
    control = f"127.0.0.1:{flower.control_port or free_port()}"  # loopback only, always
    addresses = CoordinatorAddresses(
        flower.fleet_address, control, "127.0.0.1", flower.runtime_port or free_port()
    )
    federation = Federation(control, flower.tls[0] if flower.tls else None)
    group = ProcessGroup(log_dir)
    service: RunningService | None = None
    relay = FlowerRelay(federation, config.home / "flwr-service")
    with group.running():
        try:
            daemons = _start_flower(group, config, flower, addresses)
            service = start_service(config, GridRunner(config.home, relay.grid, relay.app_hash))
            relay.warm_up()
            if on_ready is not None:
                on_ready(service)
            while True:
                time.sleep(SUPERVISE_S)
                dead = [d for d in daemons if d.proc.poll() is not None]
                if dead:
                    names = ", ".join(f"{d.name} (exit {d.proc.returncode})" for d in dead)
                    log.warning("restarting the Flower daemons: %s stopped", names)
                    relay.reset("the SuperLink restarted")
                    group.stop_all()
                    daemons = _start_flower(group, config, flower, addresses)
                    relay.warm_up()
        except KeyboardInterrupt:
            log.info("stopping: no new calls, running jobs get %.0f s", grace_s)
        finally:
            if service is not None:
                finished = service.stop(grace_s)
                if not finished:
                    log.warning("jobs still running were left to resume at the next start")
            relay.close()
    return 0
