"""The coordinator service's costs: its job store at 10,000 jobs, its API's overhead per job,
and 100 concurrent watch streams.

Run: ``python -m bench.service [--quick] [--out results]``

1. `store`: 10,000 jobs (each with 5 events) in the job store, SQLite file and a throwaway
   PostgreSQL 15 server (fsync off: optimistic), then median latencies of `list` (newest
   100, and one analyst's newest 100), `get` of random ids and `events` of a job.
2. `api_overhead`: the same statistics job over two in-process departments (the real
   job driver and ClientApp functions, `testkit.inprocess_runner`), run directly and
   through the service (mutual TLS on loopback: submit, the scheduler, watch to the end);
   medians over several runs, side by side, and their difference per job.
3. `watch_streams`: 100 clients watching one job on one service; a runner appends 50
   events 20 ms apart; the latency from an event's append to its arrival at each client
   (median, 95th percentile) and the process's resident memory before and during.

Quote latency and time to first round on a real deployment: `python -m bench.latency`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.report import command_line, environment, make_console, write_result
from server.service.job_store import JobMode, JobStore
from server.service.sql_job_store import SqlJobStore

__all__ = ["ServiceSettings", "main", "run"]


@dataclass(frozen=True)
class ServiceSettings:
    """What to run; `quick()` is the smoke-test size."""

    jobs: int = 10_000
    events_per_job: int = 5
    lookups: int = 300
    api_runs: int = 5
    watchers: int = 100
    watch_events: int = 50

    @classmethod
    def quick(cls) -> ServiceSettings:
        return cls(jobs=300, lookups=30, api_runs=1, watchers=10, watch_events=10)


def _median_ms(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _fill_and_time(store: JobStore, settings: ServiceSettings) -> dict[str, Any]:
    rng = random.Random(0)
    analysts = [f"analyst.{i}" for i in range(20)]
    spec = b"\x0a" * 600  # about a statistics spec's size
    ids: list[str] = []
    t0 = time.perf_counter()
    for i in range(settings.jobs):
        record = store.create(
            kind="statistics", name=f"job{i % 50}", analyst=analysts[i % len(analysts)],
            project="p", spec=spec, mode=JobMode.RUN,
        )  # fmt: skip
        for e in range(settings.events_per_job):
            store.append_event(record.job_id, "round_start", f'{{"round": {e}}}')
        ids.append(record.job_id)
    fill_s = time.perf_counter() - t0
    n = settings.lookups
    return {
        "jobs": settings.jobs,
        "events_per_job": settings.events_per_job,
        "fill_ms_per_job": fill_s * 1000 / settings.jobs,
        "list_newest_100_ms": _median_ms(lambda: store.list(limit=100), n),
        "list_one_analyst_100_ms": _median_ms(
            lambda: store.list(analyst=rng.choice(analysts), limit=100), n
        ),
        "get_ms": _median_ms(lambda: store.get(rng.choice(ids)), n),
        "events_ms": _median_ms(lambda: store.events(rng.choice(ids)), n),
    }


def _store(settings: ServiceSettings, root: Path) -> dict[str, Any]:
    from testkit.postgres_server import PostgresFailed, PostgresUnavailable, throwaway_postgres

    result: dict[str, Any] = {}
    root.mkdir(parents=True, exist_ok=True)
    sqlite = SqlJobStore(f"sqlite:///{root / 'jobs.db'}")
    try:
        result["sqlite"] = _fill_and_time(sqlite, settings)
    finally:
        sqlite.close()
    try:
        with throwaway_postgres() as server:
            pg = SqlJobStore(server.url())
            try:
                result["postgresql"] = _fill_and_time(pg, settings)
            finally:
                pg.close()
    except (PostgresUnavailable, PostgresFailed) as err:
        result["postgresql"] = {"skipped": str(err)[:300]}
    return result


# --- the API: overhead per job and watch streams --------------------------------------------


def _deployment(root: Path, runner_factory: Callable[[Any], Any], **config: Any) -> Any:
    """A started service (mutual TLS on loopback) in front of two in-process departments,
    and a client factory."""
    import grpc

    from protos.silobridge.v1 import coordinator_pb2_grpc as pb_grpc
    from server.service.serve import start_service
    from server.service.service_config import ServiceConfig
    from silobridge.certs import issue_client_cert, make_deployment_certs
    from testkit.inprocess_federation import Federation

    certs = make_deployment_certs(root / "certs")
    federation = Federation(root / "federation", budget=1000.0)
    service = start_service(
        ServiceConfig(
            listen="127.0.0.1:0", home=federation.home.root, store=str(root / "jobs.db"),
            tls=(certs.server_cert, certs.server_key, certs.ca_cert),
            submits_per_hour=100_000, analysts={"bench.analyst": ("bench",)}, **config,
        ),
        runner_factory(federation),
    )  # fmt: skip
    files = issue_client_cert(certs.folder, root / "clients", role="analyst", name="bench.analyst")
    creds = grpc.ssl_channel_credentials(
        root_certificates=certs.ca_cert.read_bytes(),
        private_key=files.key.read_bytes(),
        certificate_chain=files.cert.read_bytes(),
    )

    def stub() -> Any:
        channel = grpc.secure_channel(f"127.0.0.1:{service.port}", creds)
        return pb_grpc.CoordinatorStub(channel)  # type: ignore[no-untyped-call]

    return federation, service, stub


def _statistics_spec(name: str) -> Any:
    from vocab.jobs.statistics import parse_statistics_spec

    return parse_statistics_spec(
        {
            "job": {"kind": "statistics", "name": name, "epsilon": 0.5, "delta": 1e-9,
                    "min_nodes": 2, "node_wait_s": 1.0},
            "statistics": [{"measure": "count"}, {"measure": "mean", "column": "x1",
                                                   "lower": -4.0, "upper": 4.0}],
        }
    )  # fmt: skip


def _job_pb(spec: Any) -> Any:
    from protos.silobridge.v1 import job_pb2
    from vocab.serde import job_to_bytes

    message = job_pb2.JobSpec()
    message.ParseFromString(job_to_bytes(spec))
    return message


def _api_overhead(settings: ServiceSettings, root: Path) -> dict[str, Any]:
    from protos.silobridge.v1 import coordinator_pb2 as pb
    from server.run_config import RunMode
    from server.service.runner import RunRequest
    from testkit.inprocess_runner import InProcessRunner

    root.mkdir(parents=True, exist_ok=True)
    federation, service, stub = _deployment(root, InProcessRunner)
    direct_runner = InProcessRunner(federation)
    client = stub()
    direct, through = [], []
    try:
        for i in range(settings.api_runs):
            spec = _statistics_spec(f"direct{i}")
            t0 = time.perf_counter()
            request = RunRequest(f"direct-{i}", spec, RunMode.RUN, root / "direct" / str(i))
            direct_runner.run(request, lambda e: None, lambda: False)
            direct.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            info = client.SubmitJob(
                pb.SubmitJobRequest(spec=_job_pb(_statistics_spec(f"api{i}"))), timeout=30
            )
            list(client.WatchJob(pb.WatchJobRequest(job_id=info.job_id), timeout=120))
            through.append(time.perf_counter() - t0)
    finally:
        service.stop(grace_s=5.0)
    d, t = statistics.median(direct), statistics.median(through)
    return {
        "runs": settings.api_runs,
        "direct_s_median": d,
        "through_api_s_median": t,
        "overhead_ms_per_job": (t - d) * 1000,
        "ratio": t / d,
        "note": "in-process departments (no Flower daemons): the job itself takes "
        "milliseconds, so the overhead is the service's own (queue wake-up, TLS, watch)",
    }


def _rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class _Emitter:
    """A runner that emits `count` events 20 ms apart once every watcher is connected."""

    def __init__(self, count: int, ready: threading.Event) -> None:
        self.count, self.ready = count, ready

    def run(self, request: Any, emit: Any, should_stop: Any) -> Any:
        from vocab.progress import JobEnd, RoundStart

        self.ready.wait(60)
        for i in range(1, self.count + 1):
            emit(RoundStart(round=i, rounds=self.count, nodes=0))
            time.sleep(0.02)
        end = JobEnd(status="succeeded", failure="", result="", files=None, metrics={},
                     seconds=0.0)  # fmt: skip
        emit(end)
        return end


def _watch_clients(
    address: str, creds_files: tuple[bytes, bytes, bytes], job_id: str, watchers: int,
    ready: Any, out: Any,
) -> None:  # fmt: skip
    """In a child process: `watchers` threads, each with its own channel, watch `job_id`;
    puts every event's latency (s) and this process's peak RSS on `out`."""
    import grpc

    from protos.silobridge.v1 import coordinator_pb2 as pb
    from protos.silobridge.v1 import coordinator_pb2_grpc as pb_grpc

    ca, key, cert = creds_files
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )
    latencies: list[float] = []
    lock = threading.Lock()
    connected = threading.Barrier(watchers + 1)

    def watch() -> None:
        stub = pb_grpc.CoordinatorStub(grpc.secure_channel(address, creds))  # type: ignore[no-untyped-call]
        stream = stub.WatchJob(pb.WatchJobRequest(job_id=job_id), timeout=300)
        connected.wait(60)
        mine = [time.time() - event.at for event in stream]
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=watch) for _ in range(watchers)]
    for thread in threads:
        thread.start()
    connected.wait(60)
    ready.set()
    for thread in threads:
        thread.join(300)
    out.put((latencies, _rss_mib()))


def _result_of(child: Any, out: Any, timeout_s: float) -> Any:
    """What the child process put on `out`; fails at once if the child died first."""
    import queue

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return out.get(timeout=1.0)
        except queue.Empty:
            if not child.is_alive():
                raise RuntimeError(f"the watch clients' process died ({child.exitcode})") from None
    raise TimeoutError("the watch clients did not finish")


def _watch_streams(settings: ServiceSettings, root: Path) -> dict[str, Any]:
    """One service; `settings.watchers` streams from a separate client process."""
    import multiprocessing

    from protos.silobridge.v1 import coordinator_pb2 as pb
    from silobridge.certs import DeploymentCerts, issue_client_cert

    root.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    out = context.Queue()
    emitter = _Emitter(settings.watch_events, threading.Event())
    _, service, stub = _deployment(root, lambda _: emitter)
    try:
        info = stub().SubmitJob(pb.SubmitJobRequest(spec=_job_pb(_statistics_spec("w"))))
        certs = DeploymentCerts(root / "certs")
        files = issue_client_cert(
            certs.folder, root / "clients", role="analyst", name="bench.analyst", force=True
        )
        rss_before = _rss_mib()
        child = context.Process(
            target=_watch_clients,
            args=(
                f"127.0.0.1:{service.port}",
                (certs.ca_cert.read_bytes(), files.key.read_bytes(), files.cert.read_bytes()),
                info.job_id, settings.watchers, ready, out,
            ),
        )  # fmt: skip
        child.start()
        ready.wait(120)
        emitter.ready.set()
        time.sleep(0.5)
        rss_during = _rss_mib()
        latencies, client_rss = _result_of(child, out, timeout_s=300)
        child.join(60)
    finally:
        service.stop(grace_s=5.0)
    ms = sorted(x * 1000 for x in latencies)
    return {
        "watchers": settings.watchers,
        "events_each": settings.watch_events + 1,
        "received": len(ms),
        "latency_ms_median": statistics.median(ms) if ms else None,
        "latency_ms_p95": ms[int(0.95 * (len(ms) - 1))] if ms else None,
        "service_rss_mib_before": rss_before,
        "service_rss_mib_during": rss_during,
        "client_process_rss_mib": client_rss,
        "note": "clients in a separate process on the same 2 cores; an event wakes its "
        "watchers at once and they read it from memory (server.service.event_hub)",
    }


def run(settings: ServiceSettings, out_dir: Path, command: str) -> Path:
    console = make_console()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        root = Path(tmp)
        console.print(f"job store: {settings.jobs} jobs, SQLite and PostgreSQL ...")
        store = _store(settings, root / "store")
        console.print("API overhead per job ...")
        overhead = _api_overhead(settings, root / "api")
        console.print(f"{settings.watchers} watch streams ...")
        watches = _watch_streams(settings, root / "watch")
    table = Table(title=f"Job store with {settings.jobs} jobs (median ms)")
    for col in ("backend", "fill / job", "list 100", "list analyst", "get", "events"):
        table.add_column(col, justify="right")
    for backend, row in store.items():
        if "skipped" in row:
            table.add_row(backend, "skipped", "", "", "", "")
            continue
        table.add_row(
            backend, *(f"{row[k]:.2f}" for k in (
                "fill_ms_per_job", "list_newest_100_ms", "list_one_analyst_100_ms", "get_ms",
                "events_ms",
            ))
        )  # fmt: skip
    console.print(table)
    console.print(
        f"API overhead: {overhead['overhead_ms_per_job']:.0f} ms per job "
        f"(direct {overhead['direct_s_median']:.2f} s, through the API "
        f"{overhead['through_api_s_median']:.2f} s, median of {overhead['runs']})",
        highlight=False,
    )
    console.print(
        f"{watches['watchers']} watch streams: {watches['received']} events received, latency "
        f"median {watches['latency_ms_median']:.0f} ms, p95 {watches['latency_ms_p95']:.0f} ms; "
        f"service RSS {watches['service_rss_mib_before']:.0f} → "
        f"{watches['service_rss_mib_during']:.0f} MiB",
        highlight=False,
    )
    payload = {
        **environment(command),
        "benchmark": "service",
        "settings": settings.__dict__,
        "store": store,
        "api_overhead": overhead,
        "watch_streams": watches,
        "seconds": round(time.monotonic() - started, 1),
    }
    path = write_result(out_dir, "service", payload)
    console.print(f"wrote {path}")
    return path


def main(argv: Sequence[str] | None = None, via: str | None = None) -> None:
    """Entry point: `python -m bench.service [--quick] [--out DIR]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke-test size")
    parser.add_argument("--out", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    settings = ServiceSettings.quick() if args.quick else ServiceSettings()
    run(settings, args.out, command_line("service", argv, via))


if __name__ == "__main__":
    main()
