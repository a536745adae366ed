"""Builds and runs the coordinator service: the gRPC API over mutual TLS, health checking,
reflection, the job store and the scheduler, and a graceful stop.

Stopping (SIGTERM at the entry point): the service first reports NOT_SERVING, refuses new
calls, ends open watch streams (clients resume from their last seq), then waits for the
running jobs up to a grace period; jobs still running then are left RUNNING in the store
and requeued by the next start (`JobStore.requeue_running`), where they run again under
the same job id, so the nodes answer rounds they already answered from their ledgers
without charging them again.
"""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from protos.silobridge.v1 import coordinator_pb2, coordinator_pb2_grpc
from server.home.coordinator_home import CoordinatorHome
from server.service.coordinator_servicer import CoordinatorServicer
from server.service.event_hub import EventHub
from server.service.interceptor import ServiceInterceptor
from server.service.job_service import JobService
from server.service.job_store import JobStore
from server.service.runner import JobRunner
from server.service.scheduler import Scheduler
from server.service.service_config import ServiceConfig
from server.service.sql_job_store import open_job_store
from vocab.errors import ConfigError

__all__ = ["RESULTS_DIR", "RunningService", "start_service"]

log = logging.getLogger(__name__)

RESULTS_DIR = "service-results"
"""The jobs' bundles, under the coordinator home."""

SERVICE_NAME = coordinator_pb2.DESCRIPTOR.services_by_name["Coordinator"].full_name

_API_THREADS = 256
"""Calls served at once (open watch streams count); beyond it a call gets RESOURCE_EXHAUSTED
rather than waiting unseen."""

_MAX_MESSAGE = 8 * 1024 * 1024
"""Largest request the API accepts (a job spec is far smaller)."""


def _credentials(tls: tuple[Path, Path, Path]) -> grpc.ServerCredentials:
    cert, key, client_ca = tls
    try:
        pair = (key.read_bytes(), cert.read_bytes())
        roots = client_ca.read_bytes()
    except OSError as err:
        raise ConfigError(
            f"cannot read the service's TLS files: {err}",
            "make them with `silobridge certs init --out DIR` and point tls_cert, tls_key "
            "and client_ca at them",
        ) from None
    # Client certificates are required and must chain to the deployment CA: a caller
    # without one never reaches the API.
    return grpc.ssl_server_credentials([pair], root_certificates=roots, require_client_auth=True)


@dataclass
class RunningService:
    """A started service: its port, parts, and `stop`."""

    port: int
    server: grpc.Server
    health: health.HealthServicer
    scheduler: Scheduler
    store: JobStore
    jobs: JobService
    stopping: threading.Event
    hub: EventHub

    def stop(self, grace_s: float = 30.0) -> bool:
        """Report NOT_SERVING, refuse new calls, end watches, wait for running jobs.

        Returns:
            True if every running job ended within `grace_s`.
        """
        self.health.enter_graceful_shutdown()
        self.stopping.set()
        self.hub.wake_all()
        done = self.server.stop(grace=min(grace_s, 5.0))
        finished = self.scheduler.stop(grace_s)
        done.wait(timeout=5.0)
        self.store.close()
        return finished


def start_service(
    config: ServiceConfig, runner: JobRunner, *, store: JobStore | None = None
) -> RunningService:
    """Start the API and the workers; returns once the port listens.

    Args:
        config: The service config.
        runner: Runs jobs (the entry point's Flower runner; tests pass their own).
        store: A job store to use (default: opened from `config.store`).

    Raises:
        ConfigError: TLS files unreadable, the port taken, or the store unreachable.
    """
    if config.tls is None:
        raise ConfigError("the service needs TLS files", "set tls_cert, tls_key and client_ca")
    home = CoordinatorHome(config.home)
    home.root.mkdir(parents=True, exist_ok=True)
    store = store or open_job_store(config.store)
    requeued = store.requeue_running()
    if requeued:
        log.info("requeued %d job(s) a previous run left running: %s", len(requeued), requeued)
    results = home.root / RESULTS_DIR
    results.mkdir(exist_ok=True)
    hub = EventHub()
    scheduler = Scheduler(store, runner, results, workers=config.max_concurrent_jobs, hub=hub)
    stopping = threading.Event()
    audit = home.audit()

    def on_denied(caller: str, method: str, status: str, reason: str) -> None:
        audit.api_denied(caller, method, status, reason)

    jobs = JobService(
        store, config, home, results, wake=scheduler.wake, describe=runner.describe_columns
    )
    server = grpc.server(
        # A watch stream holds a worker thread while open: size the pool for many.
        futures.ThreadPoolExecutor(max_workers=_API_THREADS, thread_name_prefix="api"),
        maximum_concurrent_rpcs=_API_THREADS,
        interceptors=[ServiceInterceptor(on_denied)],
        options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.so_reuseport", 0),
        ],
    )
    servicer = CoordinatorServicer(jobs, stopping, hub)
    coordinator_pb2_grpc.add_CoordinatorServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_secure_port(config.listen, _credentials(config.tls))
    if port == 0:
        raise ConfigError(
            f"cannot listen on {config.listen}: the address is taken or not this host's",
            "choose another port with `listen` in [service]",
        )
    server.start()
    scheduler.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("coordinator service listening on port %d", port)
    return RunningService(port, server, health_servicer, scheduler, store, jobs, stopping, hub)
