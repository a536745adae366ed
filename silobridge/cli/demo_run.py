"""`silobridge demo`: a whole federation on this machine, real processes on loopback, its jobs
submitted through the coordinator service's API."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.markup import escape

from clients.ledger.node_audit import audit_path_for
from clients.node_config import load_node_config
from clients.node_identity import node_identity
from server.home.coordinator_home import AUDIT_FILE, CoordinatorHome
from server.service.grid_runner import GridRunner
from server.service.serve import start_service
from server.service.service_config import ServiceConfig
from silobridge.app_bundle import bundle_of
from silobridge.audit_crosscheck import crosscheck_files
from silobridge.certs import (
    ClientCertFiles,
    DeploymentCerts,
    NodeKeyFiles,
    issue_client_cert,
    make_deployment_certs,
    make_node_key,
)
from silobridge.cli.errors import EXIT_JOB_FAILED, console, err_console
from silobridge.cli.progress_view import LiveProgress, print_quote
from silobridge.cli.result_view import print_preview, print_result
from silobridge.coordinator_runner import start_coordinator
from silobridge.daemons import CoordinatorAddresses
from silobridge.demo_data import APPROVAL_DAYS, Department, write_departments
from silobridge.demo_population import REGRESSION_SPEC, STATISTICS_SPEC, write_labour_offices
from silobridge.enrolment import enrol_node
from silobridge.flower_federation import Federation, app_root
from silobridge.flower_relay import FlowerRelay
from silobridge.node_runner import start_node
from silobridge.processes import ProcessGroup, free_port, wait_for_port
from silobridge.service_client import (
    ClientConfig,
    JobState,
    JobView,
    ServiceClient,
    ServiceConflict,
    ServiceError,
)
from vocab.bundle import RESULT_FILE
from vocab.jobs.loader import load_spec
from vocab.jobspec import load_job_spec
from vocab.privacy import Budget
from vocab.progress import FINAL_KINDS, JobEnd, ProgressEvent, QuoteResult
from vocab.spec import JobEnvelope

__all__ = ["run_demo"]

DEMO_SPEC = Path("examples") / "jobs" / "lending_risk.toml"
ANALYST = "demo.analyst"
"""The demo analyst's client certificate name: the specs' `analyst`, whom the lending
departments' signed column approvals are bound to."""
OFFICER = "demo.officer"
SERVICE_STOP_S = 10.0
"""How long the service waits for a running job when the demo stops."""
SERVICE_LOG = "coordinator-service.log"


def run_demo(out: Path, epsilon: float, rounds: int | None, budget: float, reset: bool,
             warm: bool) -> None:  # fmt: skip
    """The demo itself (`silobridge demo`, whose options `demo_cmd` declares)."""
    started = time.monotonic()
    out = out.resolve()
    if reset and out.exists():
        shutil.rmtree(out)
    spec = load_job_spec(app_root() / DEMO_SPEC)
    spec = dataclasses.replace(
        spec, epsilon=epsilon, rounds=rounds or spec.rounds, node_wait_s=90.0
    )
    jobs: list[tuple[JobEnvelope, Path, Path]] = [(spec, app_root() / DEMO_SPEC, out / "risk")]
    for name, spec_path in (("statistics", STATISTICS_SPEC), ("regression", REGRESSION_SPEC)):
        jobs.append((load_spec(spec_path), spec_path, out / "population" / name))
    console.print(f"[bold]silobridge demo[/] → {out}")
    # The hash every node's gate will see for this checkout's runs: Flower builds the same
    # bundle from it for `flwr run`.
    app_hash = bundle_of(app_root()).sha256
    # The SuperLink's own state is per run: nodes of an earlier demo must not linger in
    # it. Privacy state - each department's ledger and audit log, the coordinator's caps,
    # audit log, identity key and job store in coordinator/ - is kept.
    home = out / "coordinator"
    trusted = CoordinatorHome(home).identity().public.pem()
    lending = write_departments(
        out, Budget(budget, 1e-5), approve=spec, app_hash=app_hash, coordinator_key=trusted
    )
    labour = write_labour_offices(
        out, Budget(budget, 1e-5), app_hash=app_hash, coordinator_key=trusted
    )
    departments = [*lending, *labour]
    console.print(
        "  the demo plays each department's privacy officer: an officer key per department "
        f"(<department>/officer/) signs an approval of its conditional column for exactly "
        f"this spec of job {spec.name!r}, run by app {app_hash[:16]}... for analyst "
        f"{spec.analyst!r}, one run (epsilon {spec.epsilon:g} in total), valid "
        f"{APPROVAL_DAYS} days; every node config trusts the coordinator's identity key "
        "(\\[coordinator] public_key = coordinator.pub)",
        highlight=False,
        soft_wrap=True,
    )
    for dept in departments:
        ledger = (
            "existing ledger kept" if (dept.folder / "ledger.sqlite").exists() else "new ledger"
        )
        approval = (
            f", approval {dept.approval_path.relative_to(dept.folder)}"
            if dept.approval_path is not None
            else ""
        )
        console.print(
            f"  department {dept.name}: {dept.rows} rows, {dept.config_path.name}, {ledger}; "
            f"officer key {dept.officer_key_id}{approval}",
            highlight=False,
            soft_wrap=True,
        )
    addresses = CoordinatorAddresses(
        fleet=f"127.0.0.1:{free_port()}",
        control=f"127.0.0.1:{free_port()}",
        runtime_port=free_port(),
    )
    shutil.rmtree(home / "flower", ignore_errors=True)
    (home / "flower").mkdir(parents=True)
    certs, node_keys = _demo_certs(out / "certs", departments)
    analyst, officer = _client_certs(out / "certs")
    federation = Federation(addresses.control, certs.ca_cert)
    group = ProcessGroup(out / "logs")
    with group.running(), contextlib.ExitStack() as stack:
        superlink = start_coordinator(
            group,
            addresses,
            database=home / "flower" / "superlink.db",
            flwr_home=home / "flower" / "flwr",
            home=home,
            tls=certs.superlink_tls(),
        )[0]
        host, port = addresses.control.rsplit(":", 1)
        wait_for_port(host, int(port), 60, superlink)
        # The service's one Flower run starts while the nodes do: the first quote need not
        # wait for it.
        relay = stack.enter_context(FlowerRelay(federation, home / "flower" / "flwr-service"))
        relay.warm_up()
        console.print(
            f"  coordinator (SuperLink) up with TLS and node authentication: fleet "
            f"{addresses.fleet}, control {addresses.control} (loopback: only the service "
            f"submits); CA {certs.ca_cert}",
            highlight=False,
            soft_wrap=True,
        )
        _enrol(CoordinatorHome(home), federation, departments, node_keys)
        for dept in departments:
            start_node(
                group,
                config_path=dept.config_path,
                department=dept.name,
                coordinator=addresses.fleet,
                port=free_port(),
                flwr_home=dept.folder / ".flwr",
                root_certificates=certs.ca_cert,
                auth_key=node_keys[dept.name].private,
                warm=warm,
            )
        console.print(
            f"  {len(departments)} department nodes (SuperNodes) started; logs in {group.log_dir}"
        )
        config = ServiceConfig(
            listen="127.0.0.1:0",
            home=home,
            store=str(home / "jobs.db"),
            tls=(certs.server_cert, certs.server_key, certs.ca_cert),
            # The projects the specs name: the service charges exactly them, so the spec
            # the nodes see is the one the officers approved.
            analysts={ANALYST: tuple(dict.fromkeys(job.project for job, _, _ in jobs))},
        )
        with _service_log(out / "logs" / SERVICE_LOG):
            service = start_service(config, GridRunner(home, relay.grid, relay.app_hash))
            try:
                address = f"127.0.0.1:{service.port}"
                console.print(
                    f"  coordinator service (API) on {address}, job store {config.store}; the jobs "
                    f"go through its API as analyst {ANALYST} (mutual TLS, {analyst.cert.name}), "
                    "and the nodes answer only jobs the coordinator signed",
                    highlight=False,
                    soft_wrap=True,
                )
                code = _run_jobs(_client(address, analyst), jobs)
                _verify_audit(_client(address, officer))
            finally:
                service.stop(grace_s=SERVICE_STOP_S)
    _report_audit(home, departments)
    console.print(f"demo finished in {time.monotonic() - started:.0f}s; all processes stopped")
    raise typer.Exit(code)


@contextlib.contextmanager
def _service_log(path: Path) -> Iterator[None]:
    """The in-process service logs to `path` beside the daemons' logs, not to the console."""
    logger = logging.getLogger("server.service")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(level)
        logger.propagate = propagate


def _client(address: str, files: ClientCertFiles) -> ServiceClient:
    return ServiceClient(ClientConfig(address, files.cert, files.key, files.ca))


def _run_jobs(client: ServiceClient, jobs: list[tuple[JobEnvelope, Path, Path]]) -> int:
    """Quote, then run, each job as the analyst; the exit code (non-zero if one failed).

    Whatever stops the demo half-way (Ctrl-C, an error) cancels the analyst's unfinished
    jobs first, so the service's stop finds no run to wait for and its next start has none
    to resume.
    """
    code = 0
    with client:
        try:
            leftover = _cancel_unfinished(client)
            if leftover:
                console.print(
                    f"  cancelled {len(leftover)} job(s) an interrupted demo left: "
                    f"{', '.join(leftover)}",
                    highlight=False,
                )
            for index, (spec, spec_path, out) in enumerate(jobs):
                if index == 1:
                    console.print("[bold]population models[/] over the regional labour offices")
                code = _quote_then_run(client, spec, spec_path, out) or code
        except BaseException:
            with contextlib.suppress(ServiceError):
                _cancel_unfinished(client)
            raise
    return code


def _cancel_unfinished(client: ServiceClient) -> list[str]:
    """Cancel the analyst's queued and running jobs; their ids."""
    page = client.list_jobs(states=(JobState.QUEUED, JobState.RUNNING))
    for job in page.jobs:
        client.cancel(job.job_id)
    return [job.job_id for job in page.jobs]


def _submit(client: ServiceClient, spec: JobEnvelope, *, quote: bool) -> JobView:
    job = client.submit(spec, spec.project, quote=quote)
    console.print(
        f"{'quote' if quote else 'job'} [bold]{escape(job.job_id)}[/] queued: "
        f"{escape(job.kind)} {escape(job.name)}, analyst {escape(job.analyst)}, "
        f"project {escape(job.project)}",
        highlight=False,
    )
    return job


def _follow(client: ServiceClient, job: JobView) -> tuple[JobView, ProgressEvent | None]:
    """Watch the job to its end with the progress view; the job as it ended, its last event."""
    final: ProgressEvent | None = None
    with LiveProgress(console) as view:
        for _, event, kind in client.watch(job.job_id):
            if event is None:
                continue
            view(event)
            if kind in FINAL_KINDS:
                final = event
    return client.get(job.job_id), final


def _fetch(client: ServiceClient, job: JobView, out: Path) -> list[Path]:
    """The job's files in `out`; none if it ended without any."""
    try:
        return client.fetch_result(job.job_id, out)
    except ServiceConflict:
        if job.state is JobState.SUCCEEDED:
            raise
        return []  # a failed run may have left no bundle; its failure is reported


def _quote_then_run(client: ServiceClient, spec: JobEnvelope, spec_path: Path, out: Path) -> int:
    """Quote the job (nothing charged), then run it if it would run; the exit code."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.toml").write_text(spec_path.read_text())
    console.print(
        f"[bold]dry run[/] of {spec.kind} job {spec.name}: every department quotes it; nothing "
        "is charged"
    )
    job, final = _follow(client, _submit(client, spec, quote=True))
    _fetch(client, job, out / "quote")  # every node's verdict and cost
    if not isinstance(final, QuoteResult):
        err_console.print(
            f"[red]quote {escape(job.job_id)} {job.state.value}[/]: "
            f"{escape(job.failure or 'no quote came back')}",
            highlight=False,
            soft_wrap=True,
        )
    else:
        print_quote(console, final)
        print_preview(console, final)
        if not final.ok:
            err_console.print(f"[red]the job would not run[/]: {escape(final.reason)}")
    if not isinstance(final, QuoteResult) or not final.ok:
        console.print("the quotes say the job cannot run, so it is not started")
        return EXIT_JOB_FAILED
    job, final = _follow(client, _submit(client, spec, quote=False))
    if isinstance(final, JobEnd) and _fetch(client, job, out) and (out / RESULT_FILE).is_file():
        _report(out)
    if job.state is not JobState.SUCCEEDED:
        console.print(
            f"[red]job {escape(job.job_id)} {job.state.value}[/]: {escape(job.failure or '-')}",
            highlight=False,
            soft_wrap=True,
        )
        return EXIT_JOB_FAILED
    return 0


def _report(folder: Path) -> None:
    """Print the bundle's summary for its kind (a statistics job's charts drawn beside it)."""
    print_result(console, folder / RESULT_FILE)
    bundle = {".json", ".md", ".csv", ".npz", ".pt"}  # the charts were listed above
    files = sorted(p.name for p in folder.iterdir() if p.suffix in bundle)
    console.print(f"result bundle: [bold]{folder}[/] ({', '.join(files)})")


def _verify_audit(client: ServiceClient) -> None:
    """As the officer, have the service verify the coordinator's audit log."""
    with client:
        check = client.verify_audit()
    if check.ok:
        console.print(
            f"audit (officer {OFFICER}, over the service's API): the coordinator's log "
            f"verifies: {check.entries} entries, head {check.head[:16]}…",
            highlight=False,
        )
    else:
        err_console.print(
            f"[red]audit (officer {OFFICER}): the coordinator's log is BROKEN[/]: "
            f"{escape(check.problem)}",
            soft_wrap=True,
        )


def _demo_certs(
    folder: Path, departments: list[Department]
) -> tuple[DeploymentCerts, dict[str, NodeKeyFiles]]:
    """The demo's CA, SuperLink certificate and SuperNode keys, made on first use, then kept."""
    certs = DeploymentCerts(folder)
    if not certs.ca_cert.exists():
        make_deployment_certs(folder)
    keys = {}
    for dept in departments:
        files = NodeKeyFiles.in_folder(folder, dept.name)
        if not files.private.exists():
            files = make_node_key(folder, dept.name, force=True)
        keys[dept.name] = files
    console.print(
        f"  certificates and SuperNode keys in {folder} (`silobridge certs init`)",
        highlight=False,
        soft_wrap=True,
    )
    return certs, keys


def _client_certs(folder: Path) -> tuple[ClientCertFiles, ClientCertFiles]:
    """The demo analyst's and officer's client certificates for the service, made afresh."""
    clients = folder / "clients"
    analyst = issue_client_cert(folder, clients, role="analyst", name=ANALYST, force=True)
    officer = issue_client_cert(folder, clients, role="officer", name=OFFICER, force=True)
    console.print(
        f"  client certificates for analyst {ANALYST} and officer {OFFICER} in {clients} "
        "(`silobridge certs issue`)",
        highlight=False,
        soft_wrap=True,
    )
    return analyst, officer


def _enrol(
    home: CoordinatorHome,
    federation: Federation,
    departments: list[Department],
    node_keys: dict[str, NodeKeyFiles],
) -> None:
    """Play each coordinator operator's `silobridge node register` for every department."""
    for dept in departments:
        identity = node_identity(load_node_config(dept.config_path).ledger_path).public
        # The demo's SuperLink state is new on every run, its home's registry is not: a
        # department whose folder was recreated has a new identity key to enrol.
        enrol_node(
            home, federation, dept.name, node_keys[dept.name].public, identity.pem(), replace=True
        )
    console.print(
        f"  {len(departments)} nodes enrolled (`silobridge node register`): SuperNode keys "
        f"with the SuperLink, identity keys in {home.nodes.folder}",
        highlight=False,
        soft_wrap=True,
    )


def _report_audit(home: Path, departments: list[Department]) -> None:
    """Verify the coordinator's audit log and cross-check every department's against it."""
    coordinator_log = home / AUDIT_FILE
    coordinator_key = CoordinatorHome(home).identity().public
    problems = []
    for dept in departments:
        ledger = dept.folder / "ledger.sqlite"
        node_log = audit_path_for(ledger)
        node_key = node_identity(ledger).public
        report = crosscheck_files(coordinator_log, node_log, dept.name, coordinator_key, node_key)
        if not report.ok:
            problems.append(dept.name)
    if problems:
        console.print(
            f"[red]audit: logs do not agree for {', '.join(problems)}[/]; run `silobridge "
            f"audit crosscheck --coordinator-home {home} --node-config <dept>/node.toml`"
        )
        return
    console.print(
        f"audit: coordinator log ({coordinator_log}) verified and cross-checked with "
        f"{len(departments)} department logs, both ways: every signed chain head each side "
        "recorded of the other is in the other's log",
        highlight=False,
        soft_wrap=True,
    )
