"""Commands for the model: ``playback``, ``train``, ``export``, ``eval``."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from panza_core.untrusted import json_text
from panza_tui.cli.mail import AccountOpt
from panza_tui.cli.output import (
    console,
    playback_with_progress,
    print_eval,
    progress,
    train_with_progress,
    workspace,
)  # fmt: skip

if TYPE_CHECKING:
    from panza_core.workspace import Workspace


def playback(
    account: AccountOpt,
    limit: Annotated[int, typer.Option(help="Generate at most this many now (0: all).")] = 0,
) -> None:
    """Data playback: write the instruction behind each email chosen for training
    ([training] max_emails; resumable, cached)."""
    ws = workspace()
    ws.store.account(account)
    console.print(playback_with_progress(ws, account, limit).summary())


def train(
    account: AccountOpt,
    epochs: Annotated[int, typer.Option(help="Override [training] epochs.")] = 0,
    max_steps: Annotated[int, typer.Option(help="Stop after this many steps.")] = 0,
    lr: Annotated[float, typer.Option(help="Override [training] lr.")] = 0.0,
    method: Annotated[str, typer.Option(help="lora, rosa or full (default: [training]).")] = "",
    base: Annotated[
        str,
        typer.Option(
            help="Base model: a Hugging Face id, folder or .gguf (default: [models] llm)."
        ),
    ] = "",
    force: Annotated[bool, typer.Option(help="Train even if an identical run exists.")] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue the last killed run from its checkpoint.")
    ] = False,
    playback: Annotated[
        bool,
        typer.Option(help="First play back the chosen emails that have no instruction yet."),
    ] = True,
) -> None:
    """Fine-tune the account's adapter (LoRA, RoSA) or whole model on the emails chosen for
    it ([training] max_emails), playing back those that have no instruction yet."""
    ws = workspace()
    t = ws.config.training
    ws.config = replace(ws.config, training=replace(
        t, epochs=epochs or t.epochs, max_steps=max_steps or t.max_steps, lr=lr or t.lr,
        method=method or t.method,
    ))  # fmt: skip
    if base:
        ws = ws.with_config(models={"llm": base})
    # Processes of a multi-process launch (torchrun, accelerate) would each play back the
    # same emails and race to store them: there, train on what playback already wrote.
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if playback and not resume and not distributed:
        report = playback_with_progress(ws, account)
        if report.counts["generated"] or report.counts["fallback"]:
            console.print(f"playback: {report.summary()}")
    elif playback and distributed and int(os.environ.get("RANK", "0")) == 0:
        missing = _unplayed(ws, account)
        if missing:
            console.print(
                f"{missing} chosen emails have no instruction yet and are left out: run "
                f"'panza playback --account {account}' before a multi-process launch"
            )
    result = train_with_progress(ws, account, force, resume)
    m = result.metrics
    resumed = f" (resumed at step {m.resumed_at})" if m.resumed_at is not None else ""
    console.print(
        f"run #{result.run_id}{' (reused)' if result.reused else ''}{resumed}: "
        f"{m.method} on {ws.llm.source or ws.llm.name}, {m.steps} steps, "
        f"loss {m.first_loss:.3f} -> {m.last_loss:.3f}, "
        f"held-out loss {m.test_loss:.3f}, {m.seconds:.0f} s; adapter in {result.adapter}"
    )


def _unplayed(ws: Workspace, account: str) -> int:
    """How many of the emails chosen for training have no playback instruction yet."""
    from training import playback, selection

    chosen = selection.choose(ws, account)
    played = {m.id for m, _ in playback.pairs(ws.store, account, ws.llm, ws.config.playback)}
    return sum(m.id not in played for m in chosen.emails)


def export(
    account: AccountOpt,
    quant: Annotated[str, typer.Option(help="Q8_0, Q4_K_M, Q5_K_M, Q4_0, F16 or F32.")] = "Q8_0",
    adapter_only: Annotated[bool, typer.Option(help="Write a GGUF LoRA adapter only.")] = False,
    force: Annotated[bool, typer.Option(help="Export even if an identical one exists.")] = False,
    run: Annotated[int, typer.Option(help="Training run to export (default: the latest).")] = 0,
    ollama: Annotated[
        str,
        typer.Option(
            help="Also write an Ollama Modelfile and register the model under this name.",
        ),
    ] = "",
) -> None:
    """Export the fine-tuned model as a quantized GGUF for llama.cpp; it becomes active."""
    from training import export as ex
    from training import ollama as ollama_export

    if ollama:
        ollama_export.check_name(ollama)  # before the export's minutes of work

    ws = workspace()
    with console.status(f"exporting {'adapter' if adapter_only else quant}"):
        result = ex.export(ws, account, quant.upper(), adapter_only, run or None, force=force)
    check = result.metrics.check
    console.print(
        f"run #{result.run_id}{' (reused)' if result.reused else ''}: {result.path} "
        f"({result.metrics.bytes / 2**20:.1f} MiB); llama.cpp vs torch logits: max |diff| "
        f"{check.max_abs_diff:.3f}, top-1 agreement {check.top1_agreement:.1%}"
    )
    if ollama:
        from panza_core.drafting import export_choice

        choice = export_choice(ws, ws.store.run(result.run_id))
        console.print(ollama_export.export(ws, choice, result.path.parent, ollama).message)


def eval_(
    account: AccountOpt,
    run: Annotated[int, typer.Option(help="Export run to evaluate (default: the active one).")] = 0,
    limit: Annotated[int, typer.Option(help="Only the first N held-out emails.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    force: Annotated[bool, typer.Option(help="Redo rows even if identical ones exist.")] = False,
) -> None:
    """Score drafts against held-out sent mail: base, base+RAG, fine-tuned, fine-tuned+RAG."""
    from training import evaluate

    ws = workspace()
    if limit:
        ws.config = replace(ws.config, evaluation=replace(ws.config.evaluation, limit=limit))
    with progress() as bar:
        task = bar.add_task("eval", total=None, info="loading models")

        def step(setting: str, done: int, total: int) -> None:
            bar.update(task, description=setting, completed=done, total=total, info="")

        result = evaluate.evaluate(ws, account, run or None, progress=step, force=force)
    if as_json:
        print(json_text(result.to_json(), indent=2))
        return
    print_eval(result)
