"""What both command-line tools share: one-line errors on stderr and a quiet exit on a closed pipe."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

err = Console(stderr=True, soft_wrap=True)


def _flags_take_no_value() -> None:
    """typer 0.29 shows a `<bool>` value after every flag in --help (`--heatmaps <bool>`), although a flag
    takes none; show no type for flags, as click's own help does."""
    option = getattr(getattr(typer, "core", None), "TyperOption", None)
    shown = getattr(option, "display_type_rich", None)
    if shown is None or getattr(shown, "flags_take_no_value", False):
        return

    def display_type_rich(self, ctx):
        return None if getattr(self, "is_flag", False) and self.metavar is None else shown(self, ctx)

    display_type_rich.flags_take_no_value = True
    option.display_type_rich = display_type_rich


_flags_take_no_value()


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run_app(app: typer.Typer) -> None:
    try:
        app()
    except BrokenPipeError:  # pragma: no cover
        sys.exit(1)
