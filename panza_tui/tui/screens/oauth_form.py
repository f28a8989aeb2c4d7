"""Adding an account that signs in with OAuth 2.0 from the app: a Gmail account, or an
IMAP account with XOAUTH2 (Microsoft 365, or any provider with an OAuth "Desktop app"
client). The provider's consent page opens in the browser (or is shown, to open on another
machine), a worker catches the loopback redirect, and on a machine without a browser (over
SSH) the user pastes the address the browser was sent to. The account is stored only once
the provider has agreed and a login with the new token works."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Protocol

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
from panza_core.untrusted import clean
from panza_tui.tui.screens.base import PanzaScreen
from sync import accounts

CONSENT_TIMEOUT_S = 600.0


def open_browser(url: str) -> bool:
    """Open ``url`` in this machine's browser if it has one; False over SSH or headless."""
    import webbrowser

    try:
        return webbrowser.get().open(url, new=1)
    except webbrowser.Error:
        return False


class Provider(Protocol):
    """What a kind of OAuth account asks for (``fields``: id, label, default value; those in
    ``required`` must be filled), how its values make the OAuth client configuration and
    scopes, and how consented credentials become an account."""

    fields: list[tuple[str, str, str]]
    required: tuple[str, ...]
    security: bool  # whether the form asks for the IMAP security mode

    def client_config(self, values: dict[str, str]) -> dict[str, Any]: ...

    def scopes(self, values: dict[str, str]) -> list[str]: ...

    def add(self, ws: Any, values: dict[str, str], creds: Any) -> accounts.Added: ...


class ConsentForm(PanzaScreen[str | None], ModalScreen[str | None]):
    """The ``provider``'s fields, the consent address, and the pasted address. Returns the
    account name, or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    ConsentForm { align: center middle; }
    ConsentForm > VerticalScroll { width: 90; height: auto; max-height: 95%;
        border: round $primary; background: $surface; padding: 0 1; }
    ConsentForm Label { color: $text-muted; width: 100%; }
    ConsentForm .buttons { height: 3; margin-top: 1; }
    ConsentForm #consent-url { margin: 1 0; }
    ConsentForm #error { color: $error; }
    """

    def __init__(self, provider: Provider) -> None:
        super().__init__()
        self.provider = provider
        self._stop = threading.Event()
        self._pasted = ""

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            for key, label, value in self.provider.fields:
                yield Label(label)
                yield Input(value=value, id=key, password=key == "client_secret")
            if self.provider.security:
                yield Label("Security")
                choices = [("TLS (IMAPS)", "ssl"), ("STARTTLS", "starttls"),
                           ("none (loopback only)", "plain")]  # fmt: skip
                yield Select(choices, value="ssl", allow_blank=False, id="security")
            with Horizontal(classes="buttons"):
                yield Button("Connect", variant="primary", id="connect")
                yield Button("Cancel", id="cancel")
            yield Static("", id="consent-url")
            yield Label("No browser here? Open the address above anywhere, then paste the "
                        "address the browser ends on:")  # fmt: skip
            yield Input(placeholder="http://localhost:…/?state=…&code=…", id="pasted")
            with Horizontal(classes="buttons"):
                yield Button("Use pasted address", id="use-pasted")
            yield Static("", id="error")

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def values(self) -> dict[str, str]:
        """The form's values by field id (selects included)."""
        found = {
            key: self.query_one(f"#{key}", Input).value.strip()
            for key, _, _ in self.provider.fields
        }
        for select in self.query(Select):
            found[str(select.id)] = str(select.value)
        return found

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self._stop.set()
        self.dismiss(None)

    @on(Button.Pressed, "#connect")
    def _connect(self) -> None:
        values = self.values()
        missing = [key for key in self.provider.required if not values.get(key)]
        if missing:
            self.query_one("#error", Static).update(f"please fill in: {', '.join(missing)}")
            return
        self._stop.clear()
        self._pasted = ""
        self.query_one("#error", Static).update("")
        self.consent(values)

    @on(Button.Pressed, "#use-pasted")
    def _use_pasted(self) -> None:
        self._pasted = self.query_one("#pasted", Input).value.strip()
        if self._pasted:
            self._stop.set()  # the worker stops listening and uses the pasted address

    def _say(self, widget: str, text: str) -> None:
        """Show ``text`` in ``widget`` as it is (it holds server and provider words)."""
        self.app.call_from_thread(self.query_one(widget, Static).update, Content(clean(text)))

    @work(thread=True, exclusive=True)
    def consent(self, values: dict[str, str]) -> str | None:
        """Worker: show the consent address, wait for the redirect (or a pasted address),
        exchange the code and add the account."""
        from sync import oauth

        try:
            provider = self.provider
            flow = oauth.Consent(provider.client_config(values), provider.scopes(values))
            opened = open_browser(flow.url)
            where = "Opened in your browser" if opened else "Open this address in a browser"
            self._say("#consent-url", f"{where}:\n{flow.url}")
            redirected = flow.wait(CONSENT_TIMEOUT_S, self._stop) or self._pasted
            if not redirected:
                flow.close()
                if not self._stop.is_set():
                    self._say("#error", "no answer from the browser in time: connect again")
                return None
            ws = self.panza.workspace
            added = provider.add(ws, values, flow.finish(redirected))
        except Exception as exc:  # noqa: BLE001 - a refused consent, a bad file: one line
            self._say("#error", describe(exc, "try again; if it persists, report it"))
            return None
        self.app.call_from_thread(self.app.notify, f"Account '{added.name}' added ({added.found}).")
        return added.name

    @on(Worker.StateChanged)
    def _added(self, event: Worker.StateChanged) -> None:
        # Dismiss only once the worker has finished: closing the screen cancels its workers.
        if event.state == WorkerState.SUCCESS and event.worker.result:
            self.dismiss(event.worker.result)


class Gmail:
    """A Gmail account (the Gmail API); ``api_root``: another endpoint (a test server)."""

    fields = [
        ("name", "Account name", ""),
        ("client_secrets", "OAuth client secrets file (a Google Cloud 'Desktop app' client)", ""),
    ]
    required: tuple[str, ...] = ("name", "client_secrets")
    security = False

    def __init__(self, api_root: str = "") -> None:
        self.api_root = api_root

    def client_config(self, values: dict[str, str]) -> dict[str, Any]:
        return accounts.read_client_secrets(Path(values["client_secrets"]).expanduser())

    def scopes(self, values: dict[str, str]) -> list[str]:
        from sync.gmail import SCOPES

        return SCOPES

    def add(self, ws: Any, values: dict[str, str], creds: Any) -> accounts.Added:
        return accounts.add_gmail_with(ws, values["name"], creds, self.api_root)


MICROSOFT = "https://login.microsoftonline.com/common/oauth2/v2.0"


class ImapOAuth:
    """An IMAP account signing in with XOAUTH2; the defaults are Microsoft 365's (bring
    your own app registration's client id). The refresh token is stored; every connection
    gets a fresh access token from the token endpoint."""

    fields = [
        ("name", "Account name", ""),
        ("host", "IMAP server", "outlook.office365.com"),
        ("port", "Port (empty: 993 for ssl, 143 otherwise)", ""),
        ("user", "Login (your address)", ""),
        ("auth_uri", "Authorization endpoint", f"{MICROSOFT}/authorize"),
        ("token_uri", "Token endpoint", f"{MICROSOFT}/token"),
        ("client_id", "OAuth client id (your app registration)", ""),
        ("client_secret", "Client secret (empty for a public client)", ""),
        ("scope", "Scopes", "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"),
    ]
    required: tuple[str, ...] = ("name", "host", "user", "auth_uri", "token_uri", "client_id")
    security = True

    def client_config(self, values: dict[str, str]) -> dict[str, Any]:
        return {"installed": {
            "client_id": values["client_id"], "client_secret": values["client_secret"],
            "auth_uri": values["auth_uri"], "token_uri": values["token_uri"],
            "redirect_uris": ["http://localhost"],
        }}  # fmt: skip

    def scopes(self, values: dict[str, str]) -> list[str]:
        return values["scope"].split()

    def add(self, ws: Any, values: dict[str, str], creds: Any) -> accounts.Added:
        from sync.imap import ImapServer

        server = ImapServer(
            host=values["host"], user=values["user"], port=int(values["port"] or 0),
            security=values["security"], auth="xoauth2", oauth_token_uri=values["token_uri"],
            oauth_client_id=values["client_id"],
        )  # fmt: skip
        secret = Secret(json.dumps(
            {"refresh_token": creds.refresh_token, "client_secret": values["client_secret"]}
        ))  # fmt: skip
        return accounts.add_imap(ws, values["name"], server, secret, [])
