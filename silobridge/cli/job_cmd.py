"""`silobridge job ...`: submit a job spec to a running federation and watch it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from silobridge.cli.errors import EXIT_JOB_FAILED, console, handle_errors
from silobridge.cli.progress_view import ProgressView, print_summary
from silobridge.flower_runner import Federation, submit_job
from vocab.bundle import files_from_event, write_files
from vocab.errors import SilobridgeError
from vocab.jobspec import RiskJobSpec, load_job_spec

__all__ = ["app", "run_and_report"]

app = typer.Typer(help="Submit and watch jobs.", no_args_is_help=True)


def run_and_report(spec: RiskJobSpec, out: Path, federation: Federation) -> int:
    """Run a job with live progress, print the summary; returns the exit code."""
    final = submit_job(spec, out, federation, out / ".flwr", ProgressView(console))
    if final["event"] == "failed":
        raise SilobridgeError(f"the coordinator rejected the job: {final['reason']}")
    files = files_from_event(final.get("files"))
    if files:
        result_path = write_files(out.resolve(), files)
    elif final.get("result"):
        # Too large to inline: the bundle is only on the coordinator host.
        result_path = Path(final["result"])
        if not result_path.is_file():
            raise SilobridgeError(
                f"the bundle is too large to send and stays on the coordinator host at "
                f"{result_path}",
                "copy it from the coordinator host",
            )
    else:
        raise SilobridgeError("the coordinator sent no result bundle", "see its ServerApp log")
    print_summary(console, result_path)
    console.print(
        f"result bundle: [bold]{result_path.parent}[/] (result.json, MODEL_CARD.md, "
        "model.npz, model.pt)"
    )
    if final["status"] != "succeeded":
        console.print(f"[red]job {final['status']}[/]: {final['failure']}", highlight=False)
        return EXIT_JOB_FAILED
    return 0


@app.command("run")
@handle_errors
def run(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Job spec TOML.")],
    out: Annotated[Path, typer.Option(help="Folder for the result bundle.")],
    coordinator: Annotated[
        str, typer.Option(help="The coordinator's Control API, HOST:PORT.")
    ] = "127.0.0.1:9093",
    root_certificates: Annotated[
        Path | None, typer.Option(help="CA certificate for a TLS coordinator.")
    ] = None,
) -> None:
    """Run a risk-model job on the federation and write its result bundle to OUT."""
    spec = load_job_spec(spec_path)
    code = run_and_report(spec, out, Federation(coordinator, root_certificates))
    raise typer.Exit(code)
