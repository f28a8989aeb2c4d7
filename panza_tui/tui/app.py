"""The Textual app: wires the screens, themes and the per-account drafter. Nothing heavy
(torch, transformers, llama_cpp) is imported here: models load in workers when first used.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.app import App

from panza_tui.core import locations
from panza_tui.core.store import Message
from panza_tui.core.workspace import Workspace


class PanzaApp(App):
    """Panza TUI. ``account``: which account to open (default: the first one)."""

    TITLE = "Panza"

    def __init__(self, account: str | None = None, workspace: Workspace | None = None) -> None:
        super().__init__()
        self.started = time.perf_counter()
        self.workspace = workspace or Workspace()
        accounts = self.workspace.store.accounts()
        if account is not None:
            self.workspace.store.account(account)  # raises AccountError naming known ones
        self.account = account or (accounts[0] if accounts else None)
        self._drafters: dict[str, object] = {}
        self.startup_ms: float | None = None

    def on_mount(self) -> None:
        from themes import load_themes

        for theme in load_themes(locations.home() / "themes"):
            self.register_theme(theme)
        wanted = self.workspace.config.ui.theme
        self.theme = wanted if wanted in self.available_themes else "panza-dark"
        from panza_tui.tui.screens.mail import MailScreen

        self.push_screen(MailScreen(self.workspace.store, self.account))

    # Navigation lives here, so that screens never import one another.

    def open_mail(self, account: str) -> None:
        """Replace the current screen with ``account``'s mail (it becomes the app's account)."""
        from panza_tui.tui.screens.mail import MailScreen

        self.account = account
        self.switch_screen(MailScreen(self.workspace.store, account))

    def open_accounts(self) -> None:
        """Push the Accounts screen."""
        from panza_tui.tui.screens.accounts import AccountsScreen

        self.push_screen(AccountsScreen())

    def open_account_form(self, account: str | None, done: Callable[[str | None], None]) -> None:
        """Push the IMAP account form (``account``: edit it; None: a new one); ``done`` gets
        the saved account's name, or None if cancelled."""
        from panza_tui.tui.screens.account_form import AccountForm

        self.push_screen(AccountForm(account), done)

    def open_compose(
        self, account: str, reply_to: Message | None = None, reply_all: bool = False
    ) -> None:
        """Push the compose screen for ``account``: a new email, or a reply to ``reply_to``."""
        from panza_tui.tui.screens.compose import ComposeScreen

        self.push_screen(ComposeScreen(account, reply_to=reply_to, reply_all=reply_all))

    def open_evaluation(self, account: str) -> None:
        """Push ``account``'s evaluation results."""
        from panza_tui.tui.screens.evaluation import EvaluationScreen

        self.push_screen(EvaluationScreen(self.workspace.store, account))

    def on_ready(self) -> None:
        self.startup_ms = (time.perf_counter() - self.started) * 1000
        self.log.info(f"start-up took {self.startup_ms:.0f} ms")

    def drafter(self, account: str):  # type: ignore[no-untyped-def]
        """The account's ``Drafter``, created once (its models load on first use)."""
        from panza_tui.core.drafting import Drafter

        if account not in self._drafters:
            self._drafters[account] = Drafter(self.workspace, account)
        return self._drafters[account]
