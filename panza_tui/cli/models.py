"""``panza models``: the language models on this machine, and ``pull`` for a Hub model."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from panza_tui.cli.output import console, workspace

app = typer.Typer(help="Language models on this machine; pull one from Hugging Face.")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


@app.callback(invoke_without_command=True)
def list_(ctx: typer.Context) -> None:
    """List the models on this machine with their sizes; * marks [models] llm."""
    if ctx.invoked_subcommand is not None:
        return
    from panza_core.catalog import available

    ws = workspace()
    current = ws.config.models.llm or "embedded"
    table = Table(show_edge=False)
    for column in ("", "where", "model", "size", r"\[models] llm = / path"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for m in available(ws.store):
        mark = "*" if m.spec and m.spec == current else ""
        table.add_row(mark, m.where, m.name, _size(m.size), m.spec or str(m.path))
    Console().print(table)


@app.command()
def pull(
    model: Annotated[str, typer.Argument(help="A Hugging Face id: owner/name[@revision].")],
) -> None:
    """Download a model from the Hugging Face Hub into its cache (or update it)."""
    from panza_core import hub
    from panza_core.errors import ModelError

    hub_id = hub.parse(model)
    if hub_id is None:
        raise ModelError(f"{model!r} is not a Hugging Face id (owner/name[@revision])")
    snapshot = hub.snapshot(hub_id, refresh=True)
    console.print(
        f'{snapshot.pinned} in {snapshot.path}; use it with \\[models] llm = "{hub_id}" '
        f"or 'panza train --base {hub_id}'"
    )
