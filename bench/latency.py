"""Quote latency and submit-to-first-round on a real deployment (BENCHMARKS.md §3).

Run: ``python -m bench.latency [--quick] [--out results]``

A real SuperLink (gated launcher, node authentication) and five SuperNodes on loopback
(warm launchers, generated data, 1,000 rows each), then:

1. `service`: the coordinator service (mutual TLS on loopback) over its one long-lived
   relay run, started before the clock runs. Each quote is `QuoteJob` then `WatchJob`
   until `quote_result`; each run is `SubmitJob` then `WatchJob` until the first
   `round_start` (and on to the job's end, off the clock).
2. `direct`: the same through `silobridge job run|quote`'s path (`flower_runner.submit_job`),
   which starts a Flower run for each job - what every job cost before the relay.

Medians (and each sample) in seconds; the first service quote is reported apart only if
the relay had not attached yet (it has: the service waits for it here).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.live_federation import LiveDeployment, live_federation
from bench.report import command_line, environment, make_console, write_result

__all__ = ["LatencySettings", "main", "run"]

_NODES = 5
_ANALYST = "bench.analyst"


@dataclass(frozen=True)
class LatencySettings:
    """What to run; `quick()` is the smoke-test size."""

    quotes: int = 5
    runs: int = 3
    direct: int = 2
    rows: int = 1000

    @classmethod
    def quick(cls) -> LatencySettings:
        return cls(quotes=2, runs=1, direct=1, rows=300)


@contextmanager
def _federation(root: Path, rows: int) -> Iterator[LiveDeployment]:
    from testkit.synthetic import make_rows, write_node

    nodes = [write_node(root / f"n{i}", f"n{i}", 1000.0, make_rows(rows, i)) for i in range(_NODES)]
    with live_federation(root, nodes) as live:
        yield live


def _spec(name: str, mode: str) -> Any:
    from testkit.synthetic import synthetic_spec

    # min_nodes = all five: the quote waits for every department, as an analyst's would.
    return synthetic_spec(f"{name}-{mode}", rounds=1, local_epochs=1, min_nodes=_NODES)


def _service_latencies(dep: LiveDeployment, settings: LatencySettings) -> dict[str, Any]:
    import grpc

    from protos.silobridge.v1 import coordinator_pb2 as pb
    from protos.silobridge.v1 import coordinator_pb2_grpc as pb_grpc
    from protos.silobridge.v1 import job_pb2
    from server.service.grid_runner import GridRunner
    from server.service.serve import start_service
    from server.service.service_config import ServiceConfig
    from silobridge.certs import issue_client_cert, make_deployment_certs
    from silobridge.flower_federation import Federation
    from silobridge.flower_relay import FlowerRelay
    from vocab.serde import job_to_bytes

    certs = make_deployment_certs(dep.root / "certs")
    config = ServiceConfig(
        listen="127.0.0.1:0", home=dep.home, store=str(dep.root / "jobs.db"),
        tls=(certs.server_cert, certs.server_key, certs.ca_cert), submits_per_hour=100_000,
        analysts={_ANALYST: ("bench",)},
    )  # fmt: skip
    files = issue_client_cert(certs.folder, dep.root / "clients", role="analyst", name=_ANALYST)
    creds = grpc.ssl_channel_credentials(
        root_certificates=certs.ca_cert.read_bytes(),
        private_key=files.key.read_bytes(),
        certificate_chain=files.cert.read_bytes(),
    )
    with FlowerRelay(Federation(dep.control), dep.root / "relay-flwr") as relay:
        started = time.perf_counter()
        relay.session()  # the service keeps its run open: start it before the clock runs
        attach_s = time.perf_counter() - started
        service = start_service(config, GridRunner(dep.home, relay.grid))
        channel = grpc.secure_channel(f"127.0.0.1:{service.port}", creds)
        stub = pb_grpc.CoordinatorStub(channel)  # type: ignore[no-untyped-call]

        def until(call: Callable[..., Any], spec: Any, kind: str) -> float:
            message = job_pb2.JobSpec()
            message.ParseFromString(job_to_bytes(spec))
            t0 = time.perf_counter()
            info = call(pb.SubmitJobRequest(spec=message), timeout=30)
            seen = 0.0
            for event in stub.WatchJob(pb.WatchJobRequest(job_id=info.job_id), timeout=600):
                if event.kind == kind and not seen:
                    seen = time.perf_counter() - t0
                if event.kind == "failed":
                    raise RuntimeError(f"job {info.job_id} failed: {event.json}")
            if not seen:
                raise RuntimeError(f"job {info.job_id} ended without a {kind} event")
            return seen

        try:
            quotes = [until(stub.QuoteJob, _spec(f"q{i}", "svc"), "quote_result")
                      for i in range(settings.quotes)]  # fmt: skip
            firsts = [until(stub.SubmitJob, _spec(f"r{i}", "svc"), "round_start")
                      for i in range(settings.runs)]  # fmt: skip
        finally:
            channel.close()
            service.stop(grace_s=5.0)
    return {"relay_attach_s": attach_s, "quote_s": quotes, "first_round_s": firsts}


def _direct_latencies(dep: LiveDeployment, settings: LatencySettings) -> dict[str, Any]:
    from server.run_config import RunMode
    from silobridge.flower_federation import Federation
    from silobridge.flower_runner import submit_job
    from vocab.progress import ProgressEvent

    def until(spec: Any, mode: RunMode, kind: str, name: str) -> float:
        seen: list[float] = []
        t0 = time.perf_counter()

        def on_event(event: ProgressEvent) -> None:
            if event.kind == kind and not seen:
                seen.append(time.perf_counter() - t0)

        submit_job(
            spec, dep.root / "direct" / name, Federation(dep.control), dep.root / "direct-flwr",
            on_event, home=dep.home, mode=mode,
        )  # fmt: skip
        if not seen:
            raise RuntimeError(f"the direct {mode.value} ended without a {kind} event")
        return seen[0]

    quotes = [until(_spec(f"q{i}", "direct"), RunMode.QUOTE, "quote_result", f"q{i}")
              for i in range(settings.direct)]  # fmt: skip
    firsts = [until(_spec(f"r{i}", "direct"), RunMode.RUN, "round_start", f"r{i}")
              for i in range(settings.direct)]  # fmt: skip
    return {"quote_s": quotes, "first_round_s": firsts}


def run(settings: LatencySettings, out_dir: Path, command: str) -> Path:
    console = make_console()
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp,
        _federation(Path(tmp), settings.rows) as dep,
    ):
        console.print(f"{_NODES} nodes up; through the service ...")
        service = _service_latencies(dep, settings)
        console.print("directly (a Flower run per job) ...")
        direct = _direct_latencies(dep, settings)
    table = Table(title=f"Real deployment, {_NODES} nodes on loopback (seconds, median)")
    for col in ("path", "quote", "submit → first round", "samples (quote / first round)"):
        table.add_column(col)
    for name, row in (("service (relay run kept open)", service), ("direct (run per job)", direct)):
        table.add_row(
            name,
            f"{statistics.median(row['quote_s']):.2f}",
            f"{statistics.median(row['first_round_s']):.2f}",
            f"{[round(x, 2) for x in row['quote_s']]} / "
            f"{[round(x, 2) for x in row['first_round_s']]}",
        )
    console.print(table)
    console.print(f"the relay run attached {service['relay_attach_s']:.1f} s after it was started")
    payload = {
        **environment(command),
        "benchmark": "latency",
        "settings": {**settings.__dict__, "nodes": _NODES},
        "service": {
            **service,
            "quote_s_median": statistics.median(service["quote_s"]),
            "first_round_s_median": statistics.median(service["first_round_s"]),
        },
        "direct": {
            **direct,
            "quote_s_median": statistics.median(direct["quote_s"]),
            "first_round_s_median": statistics.median(direct["first_round_s"]),
        },
        "seconds": round(time.monotonic() - started, 1),
    }
    path = write_result(out_dir, "latency", payload)
    console.print(f"wrote {path}")
    return path


def main(argv: Sequence[str] | None = None, via: str | None = None) -> None:
    """Entry point: `python -m bench.latency [--quick] [--out DIR]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke-test size")
    parser.add_argument("--out", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    settings = LatencySettings.quick() if args.quick else LatencySettings()
    run(settings, args.out, command_line("latency", argv, via))


if __name__ == "__main__":
    main()
