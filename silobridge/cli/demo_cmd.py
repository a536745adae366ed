"""`silobridge demo`'s options; the demo itself (`demo_run`) is imported only when it runs,
so every other command starts without the demo's imports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from silobridge.cli.errors import handle_errors

__all__ = ["demo"]


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
    """Start a SuperLink, eight department SuperNodes and the coordinator service; through
    the service's API, train the demo risk model over the four regional lending
    departments, then run a population statistics job and a population regression over the
    four regional labour offices."""
    from silobridge.cli.demo_run import run_demo

    run_demo(out, epsilon, rounds, budget, reset, warm)
