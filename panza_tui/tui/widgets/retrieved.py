"""The panel beside a draft that shows which past emails went into the prompt."""

from __future__ import annotations

from collections.abc import Sequence

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from panza_core.drafting import Retrieved
from panza_core.untrusted import clean_line


class RetrievedPanel(VerticalScroll):
    """Past emails with their cosine similarity, best first."""

    DEFAULT_CSS = """
    RetrievedPanel { border: round $secondary; border-title-color: $secondary; padding: 0 1; }
    RetrievedPanel > .retrieved { margin-bottom: 1; }
    RetrievedPanel > .empty { color: $text-muted; }
    """

    def on_mount(self) -> None:
        self.border_title = "Past emails in the prompt"
        self.show([])

    def show(self, retrieved: Sequence[Retrieved], searching: bool = False) -> None:
        """Show ``retrieved`` (or a searching / nothing-found note)."""
        self.remove_children()
        if searching:
            self.mount(Static("searching your sent mail…", classes="empty"))
            return
        if not retrieved:
            self.mount(Static("none above the similarity threshold", classes="empty"))
            return
        for r in retrieved:
            body = Content.assemble(
                (f"{r.score:.2f}", "bold"), "  ",
                (clean_line(r.subject or "(no subject)"), "italic"), "\n",
                clean_line(r.text)[:240],
            )  # fmt: skip
            self.mount(Static(body, classes="retrieved"))
