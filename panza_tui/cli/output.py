"""What the commands share: the console, progress bars, report tables, and steps that need
a progress display (training, the llama.cpp check)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from panza_core.untrusted import clean_line, plain

if TYPE_CHECKING:
    from panza_core.workspace import Workspace
    from sync.importer import ImportReport
    from training.evaluate import EvalResult
    from training.finetune import TrainResult
    from training.playback import PlaybackReport


class PlainConsole(Console):
    """A Rich console that never reads markup and prints every ``str`` it is given through
    ``untrusted.plain``: what the commands print holds mail, server answers, file names and
    model output, so brackets show as brackets and no control sequence reaches the terminal.
    Our own styles go in as ``Text`` or ``style=``."""

    def __init__(self, **options: Any) -> None:
        super().__init__(markup=False, highlight=False, **options)

    def print(self, *objects: Any, **options: Any) -> None:
        super().print(*(plain(o) if isinstance(o, str) else o for o in objects), **options)

    def status(self, status: Any, **options: Any) -> Any:
        # rich's spinner reads a str status as markup whatever the console says
        return super().status(plain(status, line=True) if isinstance(status, str) else status,
                              **options)  # fmt: skip


console = PlainConsole(stderr=True)


def say(text: object, style: str = "") -> None:
    """Print ``text`` on the console as it is (``untrusted.plain``: cleaned, no markup),
    in ``style``."""
    console.print(plain(text, style))


def workspace() -> Workspace:
    """The user's workspace (config, store, models), opened on first use."""
    from panza_core.workspace import Workspace

    return Workspace()


def progress() -> Any:
    """A ``rich.progress.Progress`` on stderr: description, bar, n/total, info, times."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}", style="bold", markup=False), BarColumn(),
        MofNCompleteColumn(), TextColumn("{task.fields[info]}", markup=False),
        TimeElapsedColumn(), TimeRemainingColumn(),
        console=console,
    )  # fmt: skip


def print_import_report(report: ImportReport) -> None:
    """Print the import (or sync) counts by outcome, and the first unparseable messages."""
    table = Table(title="import", show_edge=False)
    table.add_column("outcome")
    table.add_column("emails", justify="right")
    for reason, count in report.counts.most_common():
        table.add_row(reason, str(count))
    table.add_row(plain("total", "bold"), plain(sum(report.counts.values()), "bold"))
    console.print(table)
    if len(report.folders) > 1:
        by_folder = Table(title="by folder", show_edge=False)
        for column in ("folder", "yours", "received", "skipped", "not mail"):
            by_folder.add_column(column, justify="left" if column == "folder" else "right")
        for folder, counts in sorted(report.folders.items()):
            mail = counts["kept"] + counts["received"] + counts["not_mail"]
            skipped = sum(counts.values()) - mail
            by_folder.add_row(plain(folder, line=True), *(str(n) for n in (
                counts["kept"], counts["received"], skipped, counts["not_mail"])))  # fmt: skip
        console.print(by_folder)
    guesses = {"charset_fallback": "an unknown or wrong charset (read as UTF-8, else the "
               "declared one with bad bytes replaced, else cp1252)",
               "8bit_header": "raw 8-bit headers (read as cp1252)"}  # fmt: skip
    for note, count in sorted(report.notes.items()):
        say(f"  {count} emails with {guesses.get(note, note)}")
    for source, why in report.errors[:10]:
        say(f"  unparseable {clean_line(source)}: {clean_line(why)}")


def print_reply_counts(counts: dict[str, int]) -> None:
    """One line: the user's own mail as replies with their parent, replies without, new."""
    console.print(
        f"your emails: {counts['with_parent']} replies with the email they answer, "
        f"{counts['without_parent']} replies without it, {counts['new']} new emails"
    )


def print_eval(result: EvalResult) -> None:
    """The eval table (metrics 0-100, style similarity 0-1, the share of drafts that repeat
    a 6-word sequence and their median length; fact recall 0-1 and invented and copied
    facts per draft; against the real emails') and its files."""
    from training.metrics import FIDELITY

    table = Table(title=f"{result.account}: {result.n_test} held-out emails")
    for column in ("setting", "method", "BLEU", "chrF", "ROUGE-1", "ROUGE-2", "ROUGE-L",
                   "style sim", "repeat6 %", "words", "facts", "invented", "copied"):  # fmt: skip
        left = column in ("setting", "method")
        table.add_column(column, justify="left" if left else "right", no_wrap=left)

    def tail(row: dict) -> list[str]:
        # Rows of runs from before a metric existed lack it: left blank.
        shape = [f"{row[k]:.0f}" if k in row else "" for k in ("repeat6", "median_words")]
        return shape + [f"{row[k]:.2f}" if k in row else "" for k in FIDELITY]

    for row in result.rows:
        table.add_row(
            plain(row["setting"], line=True), plain(row["method"], line=True),
            *(f"{row[k]:.2f}" for k in ("bleu", "chrf", "rouge1", "rouge2", "rougeL")),
            f"{row['style_sim']:.3f}", *tail(row),
        )  # fmt: skip
    if result.real:
        table.add_row("real emails", "", "", "", "", "", "", "", *tail(result.real))
    PlainConsole().print(table)
    console.print(
        f"eval run #{result.run_id}: {result.folder / 'eval.json'}, eval.png, drafts.jsonl"
    )


def playback_with_progress(ws: Workspace, account: str, limit: int = 0) -> PlaybackReport:
    """``training.playback.run`` on the account's training selection (``[training]
    max_emails``, ``training.selection``), with a progress bar; prints what was chosen
    when not every email was."""
    from training import playback, selection

    with console.status("choosing the emails to learn from"):
        chosen = selection.choose(ws, account)
    if len(chosen.emails) < chosen.pool:
        say(f"learning from {chosen.summary()}")
    with progress() as bar:
        task = bar.add_task("playback", total=len(chosen.emails), info="")
        return playback.run(
            ws.store, account, ws.llm, ws.config.playback, limit=limit,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            messages=chosen.emails,
        )  # fmt: skip


def train_with_progress(
    ws: Workspace, account: str, force: bool = False, resume: bool = False
) -> TrainResult:
    """``training.finetune.train`` with a progress bar (steps, loss)."""
    from training import finetune

    with progress() as bar:
        task = bar.add_task("train", total=None, info="loading model")

        def step(done: int, total: int, loss: float) -> None:
            bar.update(task, completed=done, total=total, info=f"loss {loss:.3f}")

        return finetune.train(ws, account, progress=step, force=force, resume=resume)


def check_llama_once(ws: Workspace) -> None:
    """Before the first llama.cpp load of a fresh install: decode a few tokens in a child
    process, so a build that cannot run here is one line (BackendError), not a crash."""
    from panza_core import selfcheck
    from panza_core.models import llama_base

    with console.status("checking that llama.cpp runs on this machine (once per install)"):
        selfcheck.ensure(llama_base(ws.llm))
