"""The sent-mail browser: the account's mail on the left, the selected email on the right."""

from __future__ import annotations

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from panza_tui.core.store import Store
from panza_tui.tui.widgets.mail_list import MailList


class MailScreen(Screen):
    """Browse and filter the account's sent mail; ``c`` opens the compose screen."""

    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("c", "compose", "Compose"),
        Binding("a", "accounts", "Accounts"),
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
    MailScreen #empty { padding: 2 4; color: $text-muted; }
    """

    def __init__(self, store: Store, account: str | None) -> None:
        super().__init__()
        self.store = store
        self.account = account

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="mail-side"):
                yield Input(placeholder="filter subject, text, recipient", id="filter")
                yield MailList(id="mail-list")
            with VerticalScroll(id="preview"):
                yield Static(id="preview-head")
                yield Static(id="preview-body")
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
        """Reload the list (``search`` filters subject, text and recipients)."""
        table = self.query_one(MailList)
        messages = self.store.messages(self.account, search) if self.account else []
        table.show(messages)
        side = self.query_one("#mail-side")
        side.border_title = f"Sent ({len(messages)})" + (f" · '{search}'" if search else "")
        if messages:
            self.show_preview(messages[0].id)
        elif self.account:
            self.query_one("#preview-head", Static).update("")
            self.query_one("#preview-body", Static).update("no email matches")

    def show_preview(self, message_id: int | None) -> None:
        """Show one message in the preview pane."""
        if message_id is None:
            return
        message = self.store.message(message_id)
        head = (
            f"[b]{escape(message.subject or '(no subject)')}[/b]\n"
            f"To: {escape(message.to_addrs or '—')}\nDate: {message.date or '—'}"
        )
        self.query_one("#preview-head", Static).update(head)
        self.query_one("#preview-body", Static).update(escape(message.text))

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
        self.app.open_accounts()  # type: ignore[attr-defined]

    def action_evaluation(self) -> None:
        if self.account is None:
            self.notify("Import some mail first (panza import or panza demo).", severity="warning")
            return
        self.app.open_evaluation(self.account)  # type: ignore[attr-defined]

    def action_compose(self) -> None:
        if self.account is None:
            self.notify("Import some mail first (panza import or panza demo).", severity="warning")
            return
        self.app.open_compose(self.account)  # type: ignore[attr-defined]
