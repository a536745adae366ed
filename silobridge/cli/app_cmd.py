"""`silobridge app ...`: the app bundle a release ships, as the nodes will see it."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from silobridge.app_bundle import bundle_of
from silobridge.cli.errors import console, handle_errors

__all__ = ["app"]

app = typer.Typer(
    help="The app bundle of a silobridge release: its reproducible hash.",
    no_args_is_help=True,
)


@app.command("hash")
@handle_errors
def hash_(
    checkout: Annotated[
        Path, typer.Argument(help="A silobridge checkout (the folder with pyproject.toml).")
    ] = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Build the checkout's app bundle as `flwr run` does and print its SHA-256.

    Every node sees a run of this release under that hash, so an officer can approve the
    version by it; the same checkout gives the same hash on any machine.
    """
    bundle = bundle_of(checkout)
    if as_json:
        print(json.dumps(asdict(bundle), indent=2))
        return
    console.print(bundle.sha256, highlight=False)
    console.print(
        f"{len(bundle.files)} files, {bundle.size:,} bytes, built with flwr {bundle.flwr_version}",
        highlight=False,
    )
