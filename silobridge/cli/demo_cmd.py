"""`silobridge demo`: a whole federation on this machine, real processes on loopback."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Annotated

import typer

from clients.ledger.node_audit import audit_path_for
from clients.node_config import load_node_config
from clients.node_identity import node_identity
from server.home.coordinator_home import AUDIT_FILE, CoordinatorHome
from silobridge.app_bundle import bundle_of
from silobridge.audit_crosscheck import crosscheck_files
from silobridge.certs import DeploymentCerts, NodeKeyFiles, make_deployment_certs, make_node_key
from silobridge.cli.errors import console, handle_errors
from silobridge.cli.job_cmd import quote_and_report, run_and_report
from silobridge.coordinator_runner import start_coordinator
from silobridge.daemons import CoordinatorAddresses
from silobridge.demo_data import APPROVAL_DAYS, Department, write_departments
from silobridge.demo_population import REGRESSION_SPEC, STATISTICS_SPEC, write_labour_offices
from silobridge.enrolment import enrol_node
from silobridge.flower_runner import Federation, app_root
from silobridge.node_runner import start_node
from silobridge.processes import ProcessGroup, free_port, wait_for_port
from vocab.jobs.loader import load_spec
from vocab.jobspec import load_job_spec
from vocab.privacy import Budget
from vocab.spec import JobEnvelope

__all__ = ["demo"]

DEMO_SPEC = Path("examples") / "jobs" / "lending_risk.toml"


@handle_errors
def demo(
    out: Annotated[Path, typer.Option(help="Output folder (departments, logs, results).")] = Path(
        "out/demo"
    ),
    epsilon: Annotated[float, typer.Option(help="Per-node epsilon for the job.")] = 1.0,
    rounds: Annotated[int | None, typer.Option(help="Override the spec's rounds.")] = None,
    budget: Annotated[
        float, typer.Option(help="Each department's dataset budget (epsilon).")
    ] = 2.0,
    reset: Annotated[bool, typer.Option(help="Delete OUT first (ledgers too).")] = False,
    warm: Annotated[
        bool,
        typer.Option(
            help="Warm ClientApp launches (--no-warm: a fresh interpreter per message, "
            "the same app check)."
        ),
    ] = True,
) -> None:
    """Start a SuperLink and eight department SuperNodes; train the demo risk model over the
    four regional lending departments, then run a population statistics job and a
    population regression over the four regional labour offices."""
    started = time.monotonic()
    out = out.resolve()
    if reset and out.exists():
        shutil.rmtree(out)
    spec = load_job_spec(app_root() / DEMO_SPEC)
    spec = dataclasses.replace(
        spec, epsilon=epsilon, rounds=rounds or spec.rounds, node_wait_s=90.0
    )
    console.print(f"[bold]silobridge demo[/] → {out}")
    # The hash every node's gate will see for this checkout's runs: Flower builds the same
    # bundle from it for `flwr run`.
    app_hash = bundle_of(app_root()).sha256
    lending = write_departments(out, Budget(budget, 1e-5), approve=spec, app_hash=app_hash)
    labour = write_labour_offices(out, Budget(budget, 1e-5), app_hash=app_hash)
    departments = [*lending, *labour]
    console.print(
        "  the demo plays each department's privacy officer: an officer key per department "
        f"(<department>/officer/) signs an approval of its conditional column for exactly "
        f"this spec of job {spec.name!r}, run by app {app_hash[:16]}... for analyst "
        f"{spec.analyst!r}, one run (epsilon {spec.epsilon:g} in total), valid "
        f"{APPROVAL_DAYS} days",
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
    # The SuperLink's own state is per run: nodes of an earlier demo must not linger in
    # it. Privacy state - each department's ledger and audit log, the coordinator's caps
    # and audit log in coordinator/ - is kept.
    home = out / "coordinator"
    shutil.rmtree(home / "flower", ignore_errors=True)
    (home / "flower").mkdir(parents=True)
    certs, node_keys = _demo_certs(out / "certs", departments)
    federation = Federation(addresses.control, certs.ca_cert)
    group = ProcessGroup(out / "logs")
    with group.running():
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
        console.print(
            f"  coordinator (SuperLink) up with TLS and node authentication: fleet "
            f"{addresses.fleet}, control {addresses.control}; CA {certs.ca_cert}",
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
        code = _quote_then_run(spec, app_root() / DEMO_SPEC, out / "risk", federation)
        console.print("[bold]population models[/] over the regional labour offices")
        for name, spec_path in (("statistics", STATISTICS_SPEC), ("regression", REGRESSION_SPEC)):
            population = load_spec(spec_path)
            code = (
                _quote_then_run(population, spec_path, out / "population" / name, federation)
                or code
            )
    _report_audit(home, departments)
    console.print(f"demo finished in {time.monotonic() - started:.0f}s; all processes stopped")
    raise typer.Exit(code)


def _quote_then_run(spec: JobEnvelope, spec_path: Path, out: Path, federation: Federation) -> int:
    """Quote the job (nothing charged), then run it if it would run; the exit code."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.toml").write_text(spec_path.read_text())
    console.print(
        f"[bold]dry run[/] of {spec.kind} job {spec.name}: every department quotes it; nothing "
        "is charged"
    )
    code = quote_and_report(spec, out / "quote", federation, as_json=False)
    if code != 0:
        console.print("the quotes say the job cannot run, so it is not started")
        return code
    return run_and_report(spec, out, federation)


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
