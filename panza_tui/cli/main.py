"""The ``panza`` app: every command registered once, and the entry point that turns Panza
errors into one line."""

from __future__ import annotations

import os
import sys

import typer
from rich.text import Text

from panza_core.errors import describe
from panza_core.untrusted import plain
from panza_tui.cli import adapters, demo, drafting, mail, models, pipeline
from panza_tui.cli.output import console

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


DEBUG_FLAG = "--debug"  # anywhere on the command line; PANZA_DEBUG=1 does the same


def main() -> None:
    """Entry point: run the app, turning every error into one line and exit status 2.

    Panza's own errors say the cause and the fix. Errors of the libraries underneath (the
    store's SQLite, a worker process that died, anything unforeseen) get one line too, with
    ``--debug`` for the traceback; Ctrl-C is 130.
    """
    debug = DEBUG_FLAG in sys.argv[1:] or os.environ.get("PANZA_DEBUG", "") not in ("", "0")
    args = [a for a in sys.argv[1:] if a != DEBUG_FLAG]
    try:
        app(args=args, prog_name="panza")
    except KeyboardInterrupt:
        console.print("interrupted; finished work is saved and the next run continues from it")
        raise SystemExit(130) from None
    except Exception as exc:  # noqa: BLE001 - the one place every error becomes a line
        if debug:
            raise
        line = Text.assemble(("error:", "bold red"), " ", plain(explain(exc)))
        console.print(line, highlight=False, soft_wrap=True)
        raise SystemExit(2) from None


def explain(exc: BaseException) -> str:
    """One plain line for ``exc`` (``errors.describe``): what happened and what to do."""
    return describe(exc, f"run the command again with {DEBUG_FLAG} and report the traceback")
