"""The sent-mail table: date, recipient and subject, one row per stored message."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import DataTable

from panza_tui.core.store import Message


def short_date(iso: str | None) -> str:
    """YYYY-MM-DD of an ISO timestamp, or a dash."""
    return iso[:10] if iso else "—"


class MailList(DataTable):
    """A ``DataTable`` of messages keyed by store id (the row key is the id as text)."""

    DEFAULT_CSS = """
    MailList { height: 1fr; }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_column("date", width=10, key="date")
        self.add_column("to", width=18, key="to")
        self.add_column("subject", key="subject")

    def show(self, messages: Sequence[Message]) -> None:
        """Replace the rows with ``messages`` (newest first, as the store returns them)."""
        self.clear()
        for message in messages:
            to = (message.to_addrs or "").split("<")[0].strip().strip('"') or "—"
            self.add_row(
                short_date(message.date), to[:18], message.subject or "(no subject)",
                key=str(message.id),
            )  # fmt: skip
