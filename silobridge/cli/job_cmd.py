"""`silobridge job run|quote|query`: run a job from the coordinator host itself, without the
service (its operator's path; analysts use `job submit`, which goes through the service)."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from server.home.home_env import HOME_ENV
from server.run_config import RunMode
from silobridge.cli.errors import EXIT_JOB_FAILED, console, err_console, handle_errors
from silobridge.cli.progress_view import LiveProgress, print_quote
from silobridge.cli.result_view import print_preview, print_result
from silobridge.flower_federation import Federation
from vocab.bundle import RESULT_FILE, files_from_event
from vocab.errors import SilobridgeError
from vocab.jobs.loader import load_spec
from vocab.progress import Failed, JobEnd, ProgressEvent, QuoteResult, no_progress
from vocab.spec import JobEnvelope

__all__ = ["app", "quote_and_report", "run_and_report"]

app = typer.Typer(help="Submit and watch jobs.", no_args_is_help=True)

CoordinatorOption = Annotated[str, typer.Option(help="The coordinator's Control API, HOST:PORT.")]
HomeOption = Annotated[
    Path,
    typer.Option(
        envvar=HOME_ENV,
        help="The coordinator home (its caps, audit log and key): this command drives the "
        "job on the coordinator host.",
    ),
]
RootCertificatesOption = Annotated[
    Path | None, typer.Option(help="CA certificate for a TLS coordinator.")
]


def run_and_report(spec: JobEnvelope, out: Path, federation: Federation, home: Path) -> int:
    """Run a job of any kind with live progress, print its result; returns the exit code."""
    from silobridge.flower_runner import submit_job  # Flower's imports: only when used

    with LiveProgress(console) as view:
        final = submit_job(spec, out, federation, out / ".flwr", view, home=home)
    if isinstance(final, Failed):
        raise SilobridgeError(f"the coordinator rejected the job: {final.reason}")
    if not isinstance(final, JobEnd):
        raise SilobridgeError("the coordinator sent no result bundle", "see its ServerApp log")
    if files_from_event(final.files):
        result_path = out.resolve() / RESULT_FILE  # submit_job wrote the bundle there
    elif final.result:
        # Too large to inline: the bundle is only on the coordinator host.
        result_path = Path(final.result)
        if not result_path.is_file():
            raise SilobridgeError(
                f"the bundle is too large to send and stays on the coordinator host at "
                f"{result_path}",
                "copy it from the coordinator host",
            )
    else:
        raise SilobridgeError("the coordinator sent no result bundle", "see its ServerApp log")
    print_result(console, result_path)
    bundle = {".json", ".md", ".csv", ".npz", ".pt"}  # the charts were listed above
    files = sorted(p.name for p in result_path.parent.iterdir() if p.suffix in bundle)
    console.print(f"result bundle: [bold]{result_path.parent}[/] ({', '.join(files)})")
    if final.status != "succeeded":
        console.print(
            f"[red]job {escape(final.status)}[/]: {escape(final.failure)}", highlight=False
        )
        return EXIT_JOB_FAILED
    return 0


@app.command("run")
@handle_errors
def run(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Job spec TOML.")],
    out: Annotated[Path, typer.Option(help="Folder for the result bundle.")],
    home: HomeOption,
    coordinator: CoordinatorOption = "127.0.0.1:9093",
    root_certificates: RootCertificatesOption = None,
) -> None:
    """Run a job (risk model, statistics, regression) and write its result bundle to OUT."""
    spec = load_spec(spec_path)
    code = run_and_report(spec, out, Federation(coordinator, root_certificates), home)
    raise typer.Exit(code)


@contextlib.contextmanager
def _scratch(out: Path | None) -> Iterator[Path]:
    if out is not None:
        yield out
        return
    with tempfile.TemporaryDirectory(prefix="silobridge-quote-") as tmp:
        yield Path(tmp)


def quote_and_report(
    spec: JobEnvelope, out: Path | None, federation: Federation, home: Path, *, as_json: bool
) -> int:
    """Ask every node what `spec` would cost; print the quotes; returns the exit code.

    Exit 0 when at least `min_nodes` nodes would run the job and the central caps allow
    it, else `EXIT_JOB_FAILED` with a one-line reason on stderr.
    """
    from silobridge.flower_runner import submit_job  # Flower's imports: only when used

    # With --json, stdout carries the JSON alone.
    with _scratch(out) as folder, LiveProgress(console) as view:
        on_event: Callable[[ProgressEvent], None] = no_progress if as_json else view
        final = submit_job(
            spec, folder, federation, folder / ".flwr", on_event, home=home, mode=RunMode.QUOTE
        )
    if isinstance(final, Failed):
        raise SilobridgeError(f"the coordinator could not quote the job: {final.reason}")
    if not isinstance(final, QuoteResult):
        raise SilobridgeError(
            f"the coordinator answered a quote with {final.kind!r}",
            "the coordinator runs another silobridge version; upgrade it",
        )
    quote = final
    if as_json:
        typer.echo(json.dumps(quote.to_fields(), indent=2, sort_keys=True))
    else:
        print_quote(console, quote)
        print_preview(console, quote)
    if not quote.ok:
        err_console.print(f"[red]the job would not run[/]: {escape(quote.reason)}")
        return EXIT_JOB_FAILED
    return 0


@app.command("quote")
@handle_errors
def quote(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Job spec TOML.")],
    home: HomeOption,
    coordinator: CoordinatorOption = "127.0.0.1:9093",
    root_certificates: RootCertificatesOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the submission's log (default: a temporary folder)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the quotes as JSON.")] = False,
) -> None:
    """Dry run: what the job would cost each department, and whether it would run.

    Nothing is charged at any node or at the coordinator.
    """
    spec = load_spec(spec_path)
    federation = Federation(coordinator, root_certificates)
    raise typer.Exit(quote_and_report(spec, out, federation, home, as_json=as_json))


def query(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="Query spec TOML.")],
    out: Annotated[Path, typer.Option(help="Folder for result.json, cells.csv and charts.")],
    home: HomeOption,
    coordinator: CoordinatorOption = "127.0.0.1:9093",
    root_certificates: RootCertificatesOption = None,
) -> None:
    """Run a population query (statistics or regression): prints the result table and
    writes result.json, cells.csv, the card and a PNG per histogram and grouped statistic.

    Preview its cost and expected intervals first with `silobridge job quote SPEC`.
    """
    spec = load_spec(spec_path)
    if spec.kind == "risk":
        raise SilobridgeError(
            f"{spec_path} is a risk-model job, not a population query",
            f"run it with `silobridge job run {spec_path} --out DIR`",
        )
    raise typer.Exit(run_and_report(spec, out, Federation(coordinator, root_certificates), home))
