"""The ``panza`` app: every command registered once, and the entry point that turns Panza
errors into one line."""

from __future__ import annotations

import typer

from panza_tui.cli import adapters, demo, drafting, mail, models, pipeline
from panza_tui.cli.output import console
from panza_tui.core.errors import PanzaError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Panza TUI: an email assistant that learns to write like you, on your own machine.",
)  # fmt: skip
for name, command in (
    ("import", mail.import_), ("sync", mail.sync), ("accounts", mail.list_accounts),
    ("mail", mail.list_mail),
    ("playback", pipeline.playback), ("train", pipeline.train), ("export", pipeline.export),
    ("eval", pipeline.eval_), ("draft", drafting.draft), ("tui", drafting.tui),
    ("doctor", drafting.doctor), ("demo", demo.command),
):  # fmt: skip
    app.command(name)(command)
app.add_typer(adapters.app, name="adapters")
app.add_typer(models.app, name="models")
account_app = typer.Typer(help="Mail accounts on a server (IMAP, Gmail).", no_args_is_help=True)
account_app.command("add")(mail.account_add)
app.add_typer(account_app, name="account")


def main() -> None:
    """Entry point: run the app, turning Panza errors into one clear line."""
    try:
        app()
    except PanzaError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from None
    except OSError as exc:  # a full disk, a read-only folder, a vanished file
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        console.print(f"[bold red]error:[/] {exc.strerror or exc}{where}; finished work is kept")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        console.print("interrupted; finished work is saved and the next run continues from it")
        raise SystemExit(130) from None
