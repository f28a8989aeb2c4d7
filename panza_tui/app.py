"""The Textual app: wires the screens, themes and the per-account drafter. Nothing heavy
(torch, transformers, llama_cpp) is imported here: models load in workers when first used.
"""

from __future__ import annotations

import time

from textual.app import App

from panza_tui import locations
from panza_tui.workspace import Workspace


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
        from panza_tui.screens.mail import MailScreen

        self.push_screen(MailScreen(self.workspace.store, self.account))

    def on_ready(self) -> None:
        self.startup_ms = (time.perf_counter() - self.started) * 1000
        self.log.info(f"start-up took {self.startup_ms:.0f} ms")

    def drafter(self, account: str):  # type: ignore[no-untyped-def]
        """The account's ``Drafter``, created once (its models load on first use)."""
        from panza_tui.drafting import Drafter

        if account not in self._drafters:
            self._drafters[account] = Drafter(self.workspace, account)
        return self._drafters[account]
