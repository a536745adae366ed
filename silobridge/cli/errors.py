"""The one handler that turns errors into a clear message and a non-zero exit."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import ParamSpec, TextIO, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from vocab.errors import SilobridgeError

__all__ = ["EXIT_INTERRUPTED", "EXIT_USER_ERROR", "console", "err_console", "handle_errors"]

P = ParamSpec("P")
R = TypeVar("R")

EXIT_USER_ERROR = 2  # bad input: config, spec, data, budget
EXIT_JOB_FAILED = 3  # the job ran but did not succeed
EXIT_INTERRUPTED = 130

PIPE_WIDTH = 1000
"""Columns when output is not a terminal (a log, a pipe): tables keep their natural width
instead of rich's default 80, and lines are not broken. `COLUMNS` still wins."""


def _width(stream: TextIO | None) -> int | None:
    if os.environ.get("COLUMNS") or stream is None or stream.isatty():
        return None  # rich sizes it: the terminal, or COLUMNS
    return PIPE_WIDTH


console = Console(width=_width(sys.stdout))
err_console = Console(stderr=True, width=_width(sys.stderr))


def fail(err: SilobridgeError, code: int = EXIT_USER_ERROR) -> typer.Exit:
    # Messages quote config sections (`[officer]`) and user values (paths, names): they are
    # plain text, and read as markup they would lose the brackets or fail to print at all.
    err_console.print(f"[bold red]error:[/] {escape(err.message)}", highlight=False, soft_wrap=True)
    if err.hint:
        err_console.print(f"[bold]fix:[/] {escape(err.hint)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Print user-facing errors without a traceback and exit non-zero."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except SilobridgeError as err:
            raise fail(err) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]: stopped every process this command started")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper
