"""Commands for drafting and this machine: ``draft``, ``tui``, ``doctor``."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from panza_core.untrusted import clean, clean_line, json_text
from panza_tui.cli.mail import AccountOpt
from panza_tui.cli.output import check_llama_once, console, say, workspace


def draft(
    account: AccountOpt,
    instruction: Annotated[
        str, typer.Argument(help="What the email should say (optional for a reply).")
    ] = "",
    reply_to: Annotated[
        str, typer.Option("--reply-to", help="Reply to this stored email (its Message-ID).")
    ] = "",
    reply_all: Annotated[
        bool, typer.Option("--all", help="With --reply-to: reply to all recipients.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    no_rag: Annotated[
        bool, typer.Option("--no-rag", help="Put no past emails in the prompt.")
    ] = False,
    base: Annotated[
        bool, typer.Option("--base", help="Use the base model, not the adapter.")
    ] = False,
    candidates: Annotated[
        int | None,
        typer.Option(
            "--candidates",
            min=1,
            help="Drafts to compare by their fact check (default: [drafting] candidates).",
        ),
    ] = None,
) -> None:
    """Write a draft in the account's style (streams to the terminal).

    With --reply-to, the email being answered (and the conversation before it) goes in the
    prompt, and the reply's To, Cc, Subject, In-Reply-To and References are printed.
    """
    from panza_core.drafting import Drafter
    from panza_core.errors import PipelineError

    ws = workspace()
    parent = None
    if reply_to:
        parent = ws.store.by_message_id(account, reply_to)
        if parent is None:
            raise PipelineError(
                f"no email with Message-ID {reply_to} in '{account}': import or sync it first "
                "('panza mail --account ACCOUNT --received' lists received mail)"
            )
    drafter = Drafter(ws, account, use_adapter=not base, use_rag=not no_rag)
    with console.status(f"loading {drafter.choice.label}"):
        drafter.load()

    # The model's words reach the terminal cleaned too: an email it answers can steer it.
    def stream(piece: str) -> None:
        sys.stdout.write(clean(piece))
        sys.stdout.flush()

    request = drafter.request(instruction, reply_to=parent, reply_all=reply_all)
    h = request.headers
    if h is not None and not as_json:
        say(f"To: {clean_line(h.to)}\nCc: {clean_line(h.cc)}\nSubject: {clean_line(h.subject)}\n",
            "dim")  # fmt: skip
    suggested = drafter.suggest_to(instruction) if parent is None else []
    if suggested and not as_json:
        say(f"To (suggested): {clean_line(', '.join(suggested[:3]))}\n", "dim")
    drafts = drafter.candidates(request, candidates, on_token=None if as_json else stream)
    result = drafts[0]
    if result.candidate != 0 and not as_json:  # not the one streamed above
        say(f"\n\ncandidate {result.candidate + 1} of {len(drafts)} carries more of what you "
            "asked:\n", "dim")  # fmt: skip
        print(clean(result.draft))
    subject = drafter.subject(result.draft, instruction) if parent is None else ""
    if as_json:
        data = result.to_json()
        if parent is None:
            data.update(to_suggestions=suggested, subject=subject)
        print(json_text(data, indent=2))
        return
    if subject:
        say(f"\nSubject (suggested): {clean_line(subject)}", "dim")
    t = result.timings
    print()
    if result.facts is not None:
        say(clean_line(result.facts.summary()), "dim")
    say(
        f"{result.model}; {len(result.retrieved)} past emails; retrieval "
        f"{t['retrieval_ms']:.0f} ms, first token {t['ttft_ms']:.0f} ms, "
        f"{t['tokens_per_s']:.1f} tokens/s",
        "dim",
    )


def tui(account: Annotated[Optional[str], typer.Option("--account", "-a")] = None) -> None:  # noqa: UP045
    """Open the terminal app."""
    from panza_tui.tui.app import PanzaApp

    check_llama_once(workspace())
    PanzaApp(account=account).run()


def doctor(
    account: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--account", "-a", help="Check this account's active model."),
    ] = None,
) -> None:
    """Check this machine: llama.cpp's CPU backend (a real decode in a child process), threads,
    GPU, keyring, PANZA_HOME, disk, embedded models. Exit 1 if anything fails."""
    from rich.text import Text

    from panza_core import doctor as doctor_mod
    from panza_core.models import llama_base

    ws = workspace()
    model, lora = llama_base(ws.llm), None
    if account:
        from panza_core.drafting import choose_model

        choice = choose_model(ws, account)
        model, lora = choice.path, choice.lora
    style = {"ok": "green", "warn": "yellow", "fail": "bold red"}
    failed = False
    for finding in doctor_mod.report(model, lora):
        failed |= finding.status == "fail"
        line = Text(f"{finding.status:>4}", style=style[finding.status])
        line.append(f" {clean_line(finding.topic):<19} {clean_line(finding.detail)}")
        console.print(line, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)
