"""Adding a Gmail account from the app: Google's consent page opens in the browser (or is
shown to open on another machine), a worker catches the loopback redirect, and on a
machine without a browser (over SSH) the user pastes the address the browser was sent to.
The account is stored only once Google has agreed and the Gmail profile has been read."""

from __future__ import annotations

import threading
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static
from textual.worker import Worker, WorkerState

from panza_tui.core.errors import PanzaError
from sync import accounts

CONSENT_TIMEOUT_S = 600.0


def open_browser(url: str) -> bool:
    """Open ``url`` in this machine's browser if it has one; False over SSH or headless."""
    import webbrowser

    try:
        return webbrowser.get().open(url, new=1)
    except webbrowser.Error:
        return False


class GmailForm(ModalScreen[str | None]):
    """Returns the account name once added, or None if cancelled. ``api_root``: another
    Gmail API endpoint (a test server)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    GmailForm { align: center middle; }
    GmailForm > VerticalScroll { width: 90; height: auto; max-height: 90%;
        border: round $primary; background: $surface; padding: 0 1; }
    GmailForm Label { color: $text-muted; }
    GmailForm .buttons { height: 3; margin-top: 1; }
    GmailForm #consent-url { margin: 1 0; }
    GmailForm #error { color: $error; }
    """

    def __init__(self, api_root: str = "") -> None:
        super().__init__()
        self.api_root = api_root
        self._stop = threading.Event()
        self._pasted = ""

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Label("Account name")
            yield Input(placeholder="me", id="name")
            yield Label("OAuth client secrets file (a Google Cloud 'Desktop app' client)")
            yield Input(placeholder="~/client_secret.json", id="client_secrets")
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

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self._stop.set()
        self.dismiss(None)

    @on(Button.Pressed, "#connect")
    def _connect(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        path = self.query_one("#client_secrets", Input).value.strip()
        if not name or not path:
            self.query_one("#error", Static).update("please fill in the name and the file")
            return
        self._stop.clear()
        self._pasted = ""
        self.query_one("#error", Static).update("")
        self.consent(name, Path(path).expanduser())

    @on(Button.Pressed, "#use-pasted")
    def _use_pasted(self) -> None:
        self._pasted = self.query_one("#pasted", Input).value.strip()
        if self._pasted:
            self._stop.set()  # the worker stops listening and uses the pasted address

    def _say(self, widget: str, text: str) -> None:
        self.app.call_from_thread(self.query_one(widget, Static).update, text)

    @work(thread=True, exclusive=True)
    def consent(self, name: str, client_secrets: Path) -> str | None:
        """Worker: show the consent address, wait for the redirect (or a pasted address),
        exchange the code and add the account."""
        from sync import oauth

        try:
            flow = oauth.Consent(accounts.read_client_secrets(client_secrets))
            opened = open_browser(flow.url)
            where = "Opened in your browser" if opened else "Open this address in a browser"
            self._say("#consent-url", f"{where}:\n{flow.url}")
            redirected = flow.wait(CONSENT_TIMEOUT_S, self._stop) or self._pasted
            if not redirected:
                flow.close()
                if not self._stop.is_set():
                    self._say("#error", "no answer from the browser in time: connect again")
                return None
            creds = flow.finish(redirected)
            ws = self.app.workspace  # type: ignore[attr-defined]
            added = accounts.add_gmail_with(ws, name, creds, self.api_root)
        except PanzaError as exc:
            self._say("#error", str(exc))
            return None
        self.app.call_from_thread(self.app.notify, f"Account '{added.name}' added ({added.found}).")
        return added.name

    @on(Worker.StateChanged)
    def _added(self, event: Worker.StateChanged) -> None:
        # Dismiss only once the worker has finished: closing the screen cancels its workers.
        if event.state == WorkerState.SUCCESS and event.worker.result:
            self.dismiss(event.worker.result)
