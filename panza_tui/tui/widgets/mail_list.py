"""The mail table: date, recipient (sent) or sender (inbox) and subject, one row per stored
message."""

from __future__ import annotations

from collections.abc import Sequence

from textual.widgets import DataTable

from panza_core.store import Listed
from panza_core.untrusted import clean_line, plain


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

    def show(self, messages: Sequence[Listed], received: bool = False) -> None:
        """Replace the rows with ``messages`` (newest first, as the store returns them);
        the second column is the sender for ``received`` mail, else the recipient."""
        self.clear(columns=True)
        self.add_column("date", width=10, key="date")
        self.add_column("from" if received else "to", width=18, key="who")
        self.add_column("subject", key="subject")
        for message in messages:
            who = message.from_addr if received else message.to_addrs
            name = (who or "").split("<")[0].strip().strip('"') or who or "—"
            # Text, not str: DataTable parses strings as markup, and subjects hold brackets
            # ("[USRP-users]", "[/home/x.v:10]").
            self.add_row(
                plain(short_date(message.date), line=True), plain(clean_line(name)[:18]),
                plain(message.subject or "(no subject)", line=True), key=str(message.id),
            )  # fmt: skip
