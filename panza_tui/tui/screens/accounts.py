"""The Accounts screen: every account with its server, mail count, last sync and active
model; sync one with a progress bar, test its connection, remove it, or open its mail.

``n`` and ``e`` open a form to add or edit an IMAP account; ``o`` adds an IMAP account
signing in with OAuth (XOAUTH2) and ``g`` a Gmail account, each through the provider's
consent page (``screens.oauth_form``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static

from panza_core.errors import describe
from panza_core.untrusted import clean_line, plain
from panza_tui.tui.messages import JobFinished, MailArrived
from panza_tui.tui.screens.base import PanzaScreen
from sync import accounts

HINT = (
    "n adds an IMAP account (password), o one signing in with OAuth (Microsoft 365), "
    "g a Gmail account (Google's consent page)"
)


class AccountsScreen(PanzaScreen[None]):
    """Accounts, one row each; keys act on the highlighted one."""

    BINDINGS = [
        Binding("n", "add", "New IMAP"),
        Binding("g", "add_gmail", "New Gmail"),
        Binding("o", "add_oauth", "New IMAP OAuth"),
        Binding("e", "edit", "Edit"),
        Binding("s", "sync", "Sync"),
        Binding("t", "test", "Test connection"),
        Binding("enter", "open", "Open mail"),
        Binding("delete", "remove", "Remove"),
        Binding("escape", "app.pop_screen", "Back"),
    ]
    DEFAULT_CSS = """
    AccountsScreen DataTable { height: 1fr; border: round $primary; }
    AccountsScreen ProgressBar { padding: 0 1; }
    AccountsScreen #hint, AccountsScreen #status { color: $text-muted; padding: 0 1; }
    """

    @dataclass
    class Synced(Message):
        """A sync finished: ``summary`` for the status line (shown as it is)."""

        summary: Content

    _armed: tuple[str, float] | None = None  # (account, monotonic time) of a first delete press

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="accounts", cursor_type="row")
        yield ProgressBar(id="progress", show_eta=False)
        yield Static("", id="status")
        yield Static(HINT, id="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "accounts"
        table = self.query_one(DataTable)
        for column in ("account", "server", "emails", "last sync", "drafts to upload", "model"):
            table.add_column(column, key=column)
        self.refresh_table()
        table.focus()

    def refresh_table(self) -> None:
        """Reload every row from the store."""
        table = self.query_one(DataTable)
        keep = self.selected
        table.clear()
        rows = accounts.summaries(self.panza.workspace)
        for row in rows:
            synced = row.last_sync
            cells = (
                row.name, row.server, str(row.emails),
                time.strftime("%Y-%m-%d %H:%M", time.localtime(synced)) if synced else "never",
                str(row.drafts_waiting),
                f"export #{row.active_export}" if row.active_export else "base",
            )  # fmt: skip
            # Text, not str: DataTable reads a str as markup, and a server name is not ours.
            table.add_row(*(plain(cell, line=True) for cell in cells), key=row.name)
        if keep in [row.name for row in rows]:
            table.move_cursor(row=table.get_row_index(keep))

    @property
    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def action_add(self) -> None:
        self.panza.open_account_form(None, lambda _: self.refresh_table())

    def action_add_gmail(self) -> None:
        self.panza.open_gmail_form(lambda _: self.refresh_table())

    def action_add_oauth(self) -> None:
        self.panza.open_imap_oauth_form(lambda _: self.refresh_table())

    def action_edit(self) -> None:
        name = self.selected
        if name is None:
            return
        if accounts.imap_settings(self.panza.workspace, name) is None:
            self.notify("Only IMAP accounts are edited here.", severity="warning")
            return
        self.panza.open_account_form(name, lambda _: self.refresh_table())

    def action_sync(self) -> None:
        if self.selected:
            self.query_one("#status", Static).update(Content(f"syncing {self.selected}…"))
            self.run_sync(self.selected)

    @work(thread=True, exclusive=True, group="sync")
    def run_sync(self, account: str) -> None:
        """Worker: sync ``account``, moving the progress bar batch by batch."""
        bar = self.query_one(ProgressBar)

        def progress(done: int, total: int) -> None:
            self.app.call_from_thread(bar.update, total=total, progress=done)

        try:
            result = accounts.sync(self.panza.workspace, account, progress)
        except Exception as exc:  # noqa: BLE001 - any failure is one line; the app goes on
            self.post_message(self.Synced(
                Content.assemble((account, "bold"), ": ", clean_line(describe(exc)))
            ))  # fmt: skip
            return
        r = result.report
        self.post_message(self.Synced(Content(
            f"{account}: {r.counts['kept']} new of yours, {r.counts['received']} received, "
            f"{len(r.deleted_ids)} deleted on the server (kept), "
            f"{sum(r.counts.values())} fetched; {result.drafts_saved} drafts uploaded"
        )))  # fmt: skip

    @on(Synced)
    def _synced(self, event: Synced) -> None:
        self.query_one("#status", Static).update(event.summary)
        self.refresh_table()

    @on(MailArrived)
    def _mail_arrived(self) -> None:
        self.refresh_table()  # counts and last sync

    @on(JobFinished)
    def _job_finished(self) -> None:
        self.refresh_table()  # the model column

    def action_test(self) -> None:
        if self.selected:
            self.test_connection(self.selected)

    @work(thread=True, group="test")
    def test_connection(self, account: str) -> None:
        """Worker: log in to the account's server and log out again."""
        try:
            found = accounts.test_login(self.panza.workspace, account)
        except Exception as exc:  # noqa: BLE001 - any failure is the answer the user asked for
            self.app.call_from_thread(self.notify, describe(exc), title=account, severity="error")
            return
        self.app.call_from_thread(
            self.notify, f"connection and login work ({found})", title=account
        )

    def action_open(self) -> None:
        if self.selected:
            self.panza.open_mail(self.selected)

    def action_remove(self) -> None:
        """Remove the highlighted account: the first press asks, a second within 5 s does it."""
        name = self.selected
        if name is None:
            return
        store = self.panza.workspace.store
        armed_name, armed_at = self._armed or ("", 0.0)
        if armed_name != name or time.monotonic() - armed_at > 5:
            self._armed = (name, time.monotonic())
            self.notify(
                f"Press delete again to remove '{name}', its {store.count_messages(name)} emails, "
                "adapters and stored secrets.", severity="warning",
            )  # fmt: skip
            return
        accounts.remove(self.panza.workspace, name)
        self._armed = None
        self.notify(f"Removed account '{name}'.")
        self.refresh_table()
