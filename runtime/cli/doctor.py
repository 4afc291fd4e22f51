"""`interactive-doctor`: which backends can run here, and why not; prints what runtime.inference.doctor finds.

Exit code 0 whatever it finds (it is a report); `--json` prints the same as JSON.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from interactive_trt.common.cli import run_app

app = typer.Typer(add_completion=False)


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="print the findings as JSON")) -> None:
    """Which backends can run here (ONNX Runtime, PyTorch, TensorRT) and why not: versions, providers, GPU,
    driver, compute capability."""
    from interactive_trt.runtime.inference.doctor import diagnose

    diagnosis = diagnose()
    if as_json:
        print(json.dumps(diagnosis.to_dict(), indent=2))
        return
    console = Console(width=max(Console().width, 120))
    found = Table(title="Installed", title_justify="left")
    for column in ("component", "", "version", "found"):
        found.add_column(column, overflow="fold")
    for component in diagnosis.components:
        found.add_row(*map(Text, (component.name, "ok" if component.ok else "no", component.version,
                                  component.detail)), style=None if component.ok else "yellow")
    console.print(found, highlight=False)
    backends = Table(title="Backends", title_justify="left")
    for column in ("backend", "runs here", "why not"):
        backends.add_column(column, overflow="fold")
    for backend in diagnosis.backends:
        backends.add_row(*map(Text, (backend.name, "yes" if backend.ok else "no", backend.reason)),
                         style=None if backend.ok else "yellow")
    console.print(backends, highlight=False)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
