"""A form to add or edit an IMAP account from the TUI. The login is tested in a worker
before anything is stored; on edit, an empty password keeps the stored one. Gmail accounts
need a browser consent and are added with ``panza account add --gmail``."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from panza_core.errors import describe
from panza_core.secrets import Secret
from panza_core.untrusted import clean_line
from panza_tui.tui.screens.base import PanzaScreen
from sync import accounts
from sync.imap import ImapServer

FIELDS = [
    ("name", "Account name", "me"),
    ("host", "IMAP server", "imap.example.org"),
    ("port", "Port (empty: 993 for ssl, 143 otherwise)", ""),
    ("user", "Login", "me@example.org"),
    ("password", "Password or app password", ""),
    ("address", "Your address (empty: the login)", ""),
    ("ca_file", "CA file for a private certificate (optional)", ""),
]


class AccountForm(PanzaScreen[str | None], ModalScreen[str | None]):
    """Returns the account name once saved, or None if cancelled."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    AccountForm { align: center middle; }
    AccountForm > VerticalScroll { width: 80; height: auto; max-height: 90%;
        border: round $primary; background: $surface; padding: 0 1; }
    AccountForm Label { color: $text-muted; }
    AccountForm #buttons { height: 3; margin-top: 1; }
    AccountForm #error { color: $error; }
    """

    def __init__(self, account: str | None = None) -> None:
        super().__init__()
        self.account = account

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            for key, label, hint in FIELDS:
                yield Label(label)
                yield Input(placeholder=hint, id=key, password=key == "password")
            yield Label("Security")
            choices = [("TLS (IMAPS)", "ssl"), ("STARTTLS", "starttls"),
                       ("none (loopback only)", "plain")]  # fmt: skip
            yield Select(choices, value="ssl", allow_blank=False, id="security")
            yield Static("", id="error")
            with Horizontal(id="buttons"):
                yield Button("Test and save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        if self.account is None:
            self.query_one("#name", Input).focus()
            return
        ws = self.panza.workspace
        server = accounts.imap_settings(ws, self.account) or ImapServer(host="", user="")
        values = {
            "name": self.account, "host": server.host, "port": str(server.port or ""),
            "user": server.user, "address": ", ".join(ws.store.addresses(self.account)),
            "ca_file": server.ca_file,
        }  # fmt: skip
        for key, value in values.items():
            self.query_one(f"#{key}", Input).value = value
        self.query_one("#name", Input).disabled = True
        self.query_one("#security", Select).value = server.security
        self.query_one("#password", Input).placeholder = "(empty: keep the stored password)"
        self.query_one("#host", Input).focus()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        values = {key: self.query_one(f"#{key}", Input).value.strip() for key, _, _ in FIELDS}
        values["security"] = str(self.query_one("#security", Select).value)
        missing = [k for k in ("name", "host", "user") if not values[k]]
        if missing:
            self.query_one("#error", Static).update(f"please fill in: {', '.join(missing)}")
            return
        self.query_one("#error", Static).update("logging in…")
        password = values.pop("password")  # from here on only as a Secret, which never prints
        self.save(values, Secret(password) if password else None)

    @work(thread=True, exclusive=True)
    def save(self, values: dict[str, str], secret: Secret | None) -> str | None:
        """Worker: log in with these settings and ``secret`` (None: keep the stored one);
        store them only if that works. Any error becomes one line on the form."""
        addresses = [a.strip() for a in values["address"].split(",") if a.strip()]
        try:
            server = ImapServer(
                host=values["host"], user=values["user"], port=int(values["port"] or 0),
                security=values["security"], ca_file=values["ca_file"],
            )  # fmt: skip
            ws = self.panza.workspace
            added = accounts.add_imap(ws, values["name"], server, secret, addresses)
        except Exception as exc:  # noqa: BLE001 - a bad port, a refused login, a BAD answer
            line = Content(clean_line(describe(exc, "try again; if it persists, report it")))
            self.app.call_from_thread(self.query_one("#error", Static).update, line)
            return None
        self.app.call_from_thread(self.app.notify, f"Account '{added.name}' saved ({added.found}).")
        return added.name

    @on(Worker.StateChanged)
    def _saved(self, event: Worker.StateChanged) -> None:
        # Dismiss only once the worker has finished: closing the screen cancels its workers.
        if event.state == WorkerState.SUCCESS and event.worker.result:
            self.dismiss(event.worker.result)
