"""``panza adapters``: the exported model versions of an account, one active."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from panza_tui.cli.mail import AccountOpt
from panza_tui.cli.output import console, workspace

app = typer.Typer(help="Model versions of an account (one active).", no_args_is_help=True)


@app.command("list")
def list_(account: AccountOpt) -> None:
    """List the account's exported models, newest first; * marks the active one."""
    from panza_core.versions import versions

    table = Table(show_edge=False)
    for column in ("", "export run", "train run", "method", "quant", "form", "file"):
        table.add_column(column)
    for v in versions(workspace().store, account):
        table.add_row(
            "*" if v.active else "", f"#{v.run}", f"#{v.train_run}" if v.train_run else "-",
            v.method, v.quant, "adapter" if v.adapter_only else "merged", v.path,
        )  # fmt: skip
    Console().print(table)


@app.command()
def activate(
    account: AccountOpt, run: Annotated[int, typer.Argument(help="Export run id.")]
) -> None:
    """Draft with export ``RUN`` from now on."""
    from panza_core.versions import activate

    v = activate(workspace().store, account, run)
    console.print(f"account {account!r} drafts with export #{v.run} ({v.method}, {v.quant})")


@app.command()
def rollback(account: AccountOpt) -> None:
    """Go back to the model exported before the active one."""
    from panza_core.versions import rollback

    v = rollback(workspace().store, account)
    console.print(f"account {account!r} rolled back to export #{v.run} ({v.method}, {v.quant})")
