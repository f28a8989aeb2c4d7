"""``panza demo``: the whole pipeline on a shipped mailbox, with progress, then the app.

The mailbox is the sent mail of Maya Okafor, a fictional landscape architect (written for
this project): colleagues, clients, family, neighbours and admin, always signed "Cheers,
Maya". Every step is cached by content hash, so a second run goes straight to the app.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

ACCOUNT = "demo"
ADDRESS = "maya@okafor.example"
PREAMBLE = (
    "My name is Maya Okafor. I am a landscape architect at Greenline Studio. I live with my "
    "partner Sam and our children Ella and Leo."
)
EXAMPLE = "Ask the neighbours to water my plants the last week of March"


def mailbox() -> Path:
    """The demo mbox inside the installed package."""
    return Path(str(resources.files("panza_tui.cli") / "data" / "maya-sent.mbox"))


def run(open_tui: bool = True, instruction: str = EXAMPLE) -> None:
    """Import, play back, train, export; then open the app or print one draft."""
    from panza_core.untrusted import clean, clean_line
    from panza_core.workspace import Workspace
    from panza_tui.cli.output import (
        check_llama_once,
        console,
        playback_with_progress,
        print_import_report,
        say,
        train_with_progress,
    )
    from sync.importer import import_path
    from training import export

    ws = Workspace()
    ws.store.add_account(ACCOUNT, [ADDRESS], user_preamble=PREAMBLE)
    console.rule("1. import the demo mailbox")
    report = import_path(ws.store, ACCOUNT, mailbox(), ws.config.imports.min_words)
    print_import_report(report)
    with console.status("indexing for retrieval"):
        ws.update_index(ACCOUNT)

    console.rule("2. data playback")
    check_llama_once(ws)
    console.print(playback_with_progress(ws, ACCOUNT).summary())

    console.rule("3. fine-tune a LoRA adapter")
    trained = train_with_progress(ws, ACCOUNT)
    m = trained.metrics
    console.print(
        f"run #{trained.run_id}{' (reused)' if trained.reused else ''}: loss "
        f"{m.first_loss:.3f} -> {m.last_loss:.3f}, held-out {m.test_loss:.3f}"
    )

    console.rule("4. export GGUF (Q8_0)")
    with console.status("merging, writing and quantizing"):
        exported = export.export(ws, ACCOUNT, "Q8_0")
    console.print(f"{exported.path}{' (reused)' if exported.reused else ''}")

    if open_tui:
        from panza_tui.tui.app import PanzaApp

        PanzaApp(account=ACCOUNT).run()
        return
    console.rule(f"5. draft: {instruction}")
    from panza_core.drafting import Drafter

    drafter = Drafter(ws, ACCOUNT)
    result = drafter.draft(drafter.request(instruction))
    print(clean(result.draft))
    for r in result.retrieved:
        say(f"  retrieved #{r.id} ({r.score:.2f}) {clean_line(r.subject)}", "dim")


def command(
    no_tui: Annotated[
        bool, typer.Option("--no-tui", help="Print a draft instead of the app.")
    ] = False,
) -> None:
    """The whole pipeline on a shipped demo mailbox, then the app. Reruns reuse finished work."""
    run(open_tui=not no_tui)
