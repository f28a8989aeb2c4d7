"""The mail browser: the account's Inbox or Sent mail on the left, the selected email (or its
whole conversation) on the right; ``r`` answers the selected email.

The list is read in a worker (subject, addresses and date only), so a filter keystroke on a
mailbox of thousands never waits on the store; the selected email's text is read when shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message as TextualMessage
from textual.widgets import DataTable, Footer, Header, Input, Static

from panza_core.store import Listed, Message, Store
from panza_core.untrusted import clean, clean_line
from panza_tui.tui.messages import MailArrived
from panza_tui.tui.screens.base import PanzaScreen
from panza_tui.tui.widgets.mail_list import MailList


def turn(message: Message, selected: bool) -> Content:
    """One email of a conversation as plain text in our styles: the user's own marked
    "you", the selected one flagged. Nothing of the email is read as markup."""
    who = ("you", "bold $success") if not message.received else (
        clean_line(message.from_addr or "—"), "bold"
    )  # fmt: skip
    return Content.assemble(
        (" ▶ ", "reverse") if selected else "",
        " " if selected else "",
        who,
        f" · {clean_line(message.date or '—')}\n",
        (clean_line(message.subject), "dim"),
        "\n\n",
        clean(message.text),
        "\n",
        ("────────", "dim"),
    )


class MailScreen(PanzaScreen[None]):
    """Browse and filter the account's Inbox and Sent mail and read whole conversations;
    ``r``/``R`` reply (all) to the selected email, ``c`` writes a new one."""

    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("i", "box('inbox')", "Inbox"),
        Binding("s", "box('sent')", "Sent"),
        Binding("t", "thread", "Thread"),
        Binding("r", "reply", "Reply"),
        Binding("R", "reply(True)", "Reply all", show=False),
        Binding("c", "compose", "Compose"),
        Binding("a", "accounts", "Accounts"),
        Binding("m", "model", "Model"),
        Binding("e", "evaluation", "Evaluation"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("q", "app.quit", "Quit"),
    ]
    DEFAULT_CSS = """
    MailScreen #mail-side { width: 45%; border: round $primary; border-title-color: $primary; }
    MailScreen #filter { display: none; border: tall $accent; }
    MailScreen #filter.visible { display: block; }
    MailScreen #preview { border: round $panel-lighten-2; padding: 0 1; }
    MailScreen #preview-head { color: $text-muted; margin-bottom: 1; }
    MailScreen #thread { height: auto; }
    MailScreen #thread Static { margin-bottom: 1; }
    MailScreen #empty { padding: 2 4; color: $text-muted; }
    """

    def __init__(self, store: Store, account: str | None) -> None:
        super().__init__()
        self.store = store
        self.account = account
        # The inbox first when there is received mail (replying is most of email).
        self.received = bool(account) and store.count_messages(account or "", received=True) > 0
        self.selected: int | None = None
        self.threaded = False
        self._listings = 0  # a list read for an older filter or box is dropped

    @dataclass
    class Listing(TextualMessage):
        """The list of a box, read in a worker: rows for ``search``, ``number``-th read."""

        rows: list[Listed]
        search: str
        number: int

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="mail-side"):
                yield Input(placeholder="filter subject, text, addresses", id="filter")
                yield MailList(id="mail-list")
            with VerticalScroll(id="preview"):
                yield Static(id="preview-head")
                yield Static(id="preview-body")
                yield Vertical(id="thread")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = self.account or "no account"
        if self.account is None:
            self.query_one("#preview-body", Static).update(
                "No mail yet. Import your sent mail with\n\n"
                "  panza import ~/Takeout/Sent.mbox --account me --address me@example.org\n\n"
                "or try everything on a sample mailbox with  panza demo"
            )
        self.refresh_list()
        self.query_one(MailList).focus()

    def refresh_list(self, search: str = "") -> None:
        """Read the list of the current box again, in a worker (``search`` filters
        subject, text and addresses)."""
        self._listings += 1
        if self.account is None:
            self.post_message(self.Listing([], search, self._listings))
            return
        self.read_list(self.account, search, self.received, self._listings)

    @work(thread=True, exclusive=True, group="list")
    def read_list(self, account: str, search: str, received: bool, number: int) -> None:
        """Worker: the box's rows (list columns only), posted back as a ``Listing``."""
        self.post_message(self.Listing(self.store.listing(account, search, received), search,
                                       number))  # fmt: skip

    @on(MailArrived)
    def _mail_arrived(self, event: MailArrived) -> None:
        if self.account in event.arrived:
            self.refresh_list(self.query_one("#filter", Input).value.strip())

    @on(Listing)
    def _listed(self, event: Listing) -> None:
        if event.number != self._listings:  # the user typed on, or changed box
            return
        messages, search = event.rows, event.search
        table = self.query_one(MailList)
        table.show(messages, self.received)
        side = self.query_one("#mail-side")
        box = "Inbox" if self.received else "Sent"
        side.border_title = Content(
            f"{box} ({len(messages)})" + (f" · '{clean_line(search)}'" if search else "")
        )
        if messages:
            self.show_preview(messages[0].id)
        elif self.account:
            self.selected = None
            self.query_one("#preview-head", Static).update("")
            self.query_one("#preview-body", Static).update("no email matches")

    def show_preview(self, message_id: int | None) -> None:
        """Show one message in the preview pane, or its whole conversation (``t``)."""
        if message_id is None:
            return
        self.selected = message_id
        message = self.store.message(message_id)
        thread = self.store.thread(message.account, message.thread_id or "") or [message]
        who = f"From: {message.from_addr}" if message.received else f"To: {message.to_addrs}"
        size = f"{len(thread)} emails in this conversation" + ("" if self.threaded else " (t)")
        head = Content.assemble(
            (clean_line(message.subject or "(no subject)"), "bold"), "\n",
            clean_line(who or "—"), f"\nDate: {clean_line(message.date or '—')}",
            ("\n" + size, "dim") if len(thread) > 1 else "",
        )  # fmt: skip
        self.query_one("#preview-head", Static).update(head)
        body = self.query_one("#preview-body", Static)
        body.update(Content("" if self.threaded else clean(message.text)))
        body.display = not self.threaded
        box = self.query_one("#thread", Vertical)
        box.remove_children()
        if self.threaded:
            turns = [Static(turn(m, m.id == message_id)) for m in thread]
            box.mount_all(turns)
            chosen = next((t for t, m in zip(turns, thread, strict=True) if m.id == message_id))
            # The conversation opens at the selected email, earlier ones above it.
            self.call_after_refresh(self.query_one("#preview").scroll_to_widget, chosen, top=True)

    def action_box(self, box: str) -> None:
        """Show the Inbox (received mail) or Sent (the user's own)."""
        self.received = box == "inbox"
        self.refresh_list(self.query_one("#filter", Input).value.strip())
        self.query_one(MailList).focus()

    def action_thread(self) -> None:
        """Toggle between the selected email and its whole conversation."""
        self.threaded = not self.threaded
        self.show_preview(self.selected)

    def action_reply(self, reply_all: bool = False) -> None:
        """Answer the selected email in the compose screen."""
        if self.account is None or self.selected is None:
            self.notify("Select an email to reply to.", severity="warning")
            return
        message = self.store.message(self.selected)
        self.panza.open_compose(self.account, reply_to=message, reply_all=reply_all)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key and event.row_key.value:
            self.show_preview(int(event.row_key.value))

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.refresh_list(event.value.strip())

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(MailList).focus()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("visible")
        self.query_one(MailList).focus()

    def action_accounts(self) -> None:
        self.panza.open_accounts()

    def action_model(self) -> None:
        if self.account is None:
            self.notify("Import some mail first (panza import or panza demo).", severity="warning")
            return
        self.panza.open_model(self.account)

    def action_evaluation(self) -> None:
        if self.account is None:
            self.notify("Import some mail first (panza import or panza demo).", severity="warning")
            return
        self.panza.open_evaluation(self.account)

    def action_compose(self) -> None:
        if self.account is None:
            self.notify("Import some mail first (panza import or panza demo).", severity="warning")
            return
        self.panza.open_compose(self.account)
