"""The panel beside a draft that shows which past emails went into the prompt."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from textual.containers import VerticalScroll
from textual.widgets import Static

from panza_tui.core.drafting import Retrieved


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
            snippet = " ".join(r.text.split())[:240]
            subject = escape(r.subject or "(no subject)")
            body = f"[b]{r.score:.2f}[/b]  [i]{subject}[/i]\n{escape(snippet)}"
            self.mount(Static(body, classes="retrieved"))
