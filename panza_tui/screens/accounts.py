"""The Accounts screen: every account with its server, mail count, last sync and active
model; sync one with a progress bar, test its connection, remove it, or open its mail.

``n`` and ``e`` open a form to add or edit an IMAP account; Gmail accounts, which need a
browser consent, are added with ``panza account add --gmail``; the screen says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static

from panza_tui.errors import PanzaError

HINT = (
    "n adds an IMAP account here; a Gmail account needs a browser consent: "
    "panza account add NAME --gmail --client-secrets FILE"
)


class AccountsScreen(Screen):
    """Accounts, one row each; keys act on the highlighted one."""

    BINDINGS = [
        Binding("n", "add", "New"),
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
        """A sync finished: ``summary`` for the status line."""

        summary: str

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
        store = self.app.workspace.store  # type: ignore[attr-defined]
        table = self.query_one(DataTable)
        keep = self.selected
        table.clear()
        for name in store.accounts():
            server = store.server(name)
            kind = server.get("kind")
            where = {
                "imap": f"IMAP {server.get('host', '')}",
                "gmail": f"Gmail {server.get('email', '')}",
            }
            synced = store.db.execute(
                "SELECT MAX(synced_at) FROM sync_state WHERE account=?", (name,)
            ).fetchone()[0]
            waiting = sum(1 for d in store.drafts(name) if d["server_error"])
            active = store.account(name)["active_adapter"]
            table.add_row(
                name, where.get(kind, "files only"), str(store.count_messages(name)),
                time.strftime("%Y-%m-%d %H:%M", time.localtime(synced)) if synced else "never",
                str(waiting), f"export #{active}" if active else "base", key=name,
            )  # fmt: skip
        if keep in store.accounts():
            table.move_cursor(row=table.get_row_index(keep))

    @property
    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def action_add(self) -> None:
        from panza_tui.screens.account_form import AccountForm

        self.app.push_screen(AccountForm(), lambda _: self.refresh_table())

    def action_edit(self) -> None:
        name = self.selected
        if name is None:
            return
        if self.app.workspace.store.server(name).get("kind") != "imap":  # type: ignore[attr-defined]
            self.notify("Only IMAP accounts are edited here.", severity="warning")
            return
        from panza_tui.screens.account_form import AccountForm

        self.app.push_screen(AccountForm(name), lambda _: self.refresh_table())

    def action_sync(self) -> None:
        if self.selected:
            self.query_one("#status", Static).update(f"syncing {self.selected}…")
            self.run_sync(self.selected)

    @work(thread=True, exclusive=True, group="sync")
    def run_sync(self, account: str) -> None:
        """Worker: sync ``account``, moving the progress bar batch by batch."""
        from sync.runner import sync_account

        bar = self.query_one(ProgressBar)

        def progress(done: int, total: int) -> None:
            self.app.call_from_thread(bar.update, total=total, progress=done)

        try:
            result = sync_account(self.app.workspace, account, progress)  # type: ignore[attr-defined]
        except PanzaError as exc:
            self.post_message(self.Synced(f"[b]{account}[/b]: {exc}"))
            return
        r = result.report
        self.post_message(self.Synced(
            f"{account}: {r.counts['kept']} new, {len(r.deleted_ids)} removed, "
            f"{sum(r.counts.values())} fetched; {result.drafts_saved} drafts uploaded"
        ))  # fmt: skip

    @on(Synced)
    def _synced(self, event: Synced) -> None:
        self.query_one("#status", Static).update(event.summary)
        self.refresh_table()

    def action_test(self) -> None:
        if self.selected:
            self.test_connection(self.selected)

    @work(thread=True, group="test")
    def test_connection(self, account: str) -> None:
        """Worker: log in to the account's server and log out again."""
        from sync.runner import server_secret

        try:
            server, secret = server_secret(self.app.workspace, account)  # type: ignore[attr-defined]
            if server["kind"] == "imap":
                from sync import imap

                imap.connect(imap.ImapServer.from_json(server), secret).logout()
            else:
                import json

                from sync import gmail

                creds = gmail.credentials(json.loads(secret))
                gmail.service(creds, server.get("root_url", "")).users().getProfile(
                    userId="me"
                ).execute()
        except Exception as exc:  # any failure is the answer the user asked for
            self.app.call_from_thread(self.notify, str(exc), title=account, severity="error")
            return
        self.app.call_from_thread(self.notify, "connection and login work", title=account)

    def action_open(self) -> None:
        if self.selected:
            from panza_tui.screens.mail import MailScreen

            self.app.account = self.selected  # type: ignore[attr-defined]
            self.app.switch_screen(MailScreen(self.app.workspace.store, self.selected))  # type: ignore[attr-defined]

    def action_remove(self) -> None:
        """Remove the highlighted account: the first press asks, a second within 5 s does it."""
        name = self.selected
        if name is None:
            return
        store = self.app.workspace.store  # type: ignore[attr-defined]
        armed_name, armed_at = self._armed or ("", 0.0)
        if armed_name != name or time.monotonic() - armed_at > 5:
            self._armed = (name, time.monotonic())
            self.notify(
                f"Press delete again to remove '{name}', its {store.count_messages(name)} emails, "
                "adapters and stored secrets.", severity="warning",
            )  # fmt: skip
            return
        import shutil

        from panza_tui import locations, secrets

        store.db.execute("DELETE FROM accounts WHERE name=?", (name,))  # cascades to its rows
        for kind in ("imap", "gmail"):
            secrets.delete_secret(f"{name}:{kind}")
        shutil.rmtree(locations.account_dir(name), ignore_errors=True)
        self._armed = None
        self.notify(f"Removed account '{name}'.")
        self.refresh_table()
