"""The account's latest style evaluation (``panza eval``): the four-row table and where its
chart and drafts are. Reads the stored run; nothing heavy is imported."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable, Footer, Header, Static

from panza_core.store import Store
from panza_core.untrusted import clean, clean_line, plain
from panza_tui.tui.screens.base import PanzaScreen

COLUMNS = (("setting", "setting"), ("method", "method"), ("bleu", "BLEU"), ("chrf", "chrF"),
           ("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"),
           ("style_sim", "style sim"), ("repeat6", "repeat6 %"),
           ("median_words", "words"), ("fact_recall", "facts"), ("invented", "invented"),
           ("copied", "copied"))  # fmt: skip


class EvaluationScreen(PanzaScreen[None]):
    """The newest eval run of ``account``: metrics 0-100, style similarity 0-1."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]
    DEFAULT_CSS = """
    EvaluationScreen #eval-head { padding: 1 2; color: $text-muted; }
    EvaluationScreen DataTable { height: auto; margin: 0 2; }
    EvaluationScreen #eval-files { padding: 1 2; color: $text-muted; }
    """

    def __init__(self, store: Store, account: str) -> None:
        super().__init__()
        self.store = store
        self.account = account

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="eval-head")
        yield DataTable(id="eval-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="eval-files")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{self.account} · evaluation"
        run = self.store.latest_run(self.account, "eval")
        head = self.query_one("#eval-head", Static)
        if run is None:
            head.update(Content(
                f"No evaluation yet. Run\n\n  panza eval --account {clean_line(self.account)}\n\n"
                "to score base, base + RAG, fine-tuned and fine-tuned + RAG drafts against "
                "your held-out sent mail."
            ))  # fmt: skip
            self.query_one(DataTable).display = False
            return
        rows = run.metrics.get("rows", [])
        head.update(
            f"Eval run #{run.id}: {run.metrics.get('n_test', 0)} held-out emails, "
            "greedy drafts (BLEU, chrF, ROUGE 0-100; style similarity 0-1; share of drafts "
            "repeating a 6-word sequence and median length in words; share of the "
            "instruction's facts carried, 0-1, and facts invented or copied from a past "
            "email, per draft)"
        )
        table = self.query_one(DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        for row in rows:
            table.add_row(*(_cell(key, row.get(key)) for key, _ in COLUMNS), key=row["setting"])
        if real := run.metrics.get("real"):  # the held-out emails themselves, to compare with
            real = {"setting": "real emails", **real}
            table.add_row(*(_cell(key, real.get(key)) for key, _ in COLUMNS), key="real")
        self.query_one("#eval-files", Static).update(
            Content(clean(f"chart: {run.path}/eval.png\ndrafts: {run.path}/drafts.jsonl"))
        )


def _cell(key: str, value: object) -> Text:
    if isinstance(value, float):
        digits = {"style_sim": 3, "repeat6": 0, "median_words": 0}.get(key, 2)
        return Text(f"{value:.{digits}f}", justify="right")
    return plain("" if value is None else value, line=True)
