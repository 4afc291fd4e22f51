"""What both command-line tools share: one-line errors on stderr and a quiet exit on a closed pipe."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run_app(app: typer.Typer) -> None:
    try:
        app()
    except BrokenPipeError:  # pragma: no cover
        sys.exit(1)
