"""Entry point of the `silobridge` command."""

from __future__ import annotations

import logging

import typer

from silobridge.cli import (
    app_cmd,
    audit_cmd,
    budget_cmd,
    certs_cmd,
    coordinator_cmd,
    demo_cmd,
    job_cmd,
    node_cmd,
    officer_cmd,
    service_cmd,
)
from silobridge.cli.errors import handle_errors

__all__ = ["app", "main"]

app = typer.Typer(
    name="silobridge",
    help="Federated, privacy-preserving analytics across department silos.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(node_cmd.app, name="node")
app.add_typer(coordinator_cmd.app, name="coordinator")
app.add_typer(job_cmd.app, name="job")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(budget_cmd.app, name="budget")
app.add_typer(officer_cmd.app, name="officer")
app.add_typer(app_cmd.app, name="app")
app.add_typer(certs_cmd.app, name="certs")
app.command("demo")(demo_cmd.demo)
app.command("query")(handle_errors(job_cmd.query))
# Over the coordinator service's API: job submit/watch/list/status/cancel/result, the
# central caps, the coordinator's audit log, and who the service takes the caller for.
service_cmd.register_job_commands(job_cmd.app)
budget_cmd.app.add_typer(service_cmd.central_app, name="central")
audit_cmd.app.add_typer(service_cmd.audit_app, name="coordinator")
app.command("whoami")(service_cmd.whoami)
node_cmd.app.command("list")(service_cmd.list_nodes)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
