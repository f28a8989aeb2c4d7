"""The base of every screen: ``self.panza`` is the running ``PanzaApp``, typed, so a screen
calls the app's methods (``open_compose``, ``drafter``, ``jobs``) as checked calls rather
than through ``Any`` (as elia's ``cast("Elia", self.app)``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, cast

from textual.screen import Screen

if TYPE_CHECKING:
    from panza_tui.tui.app import PanzaApp

ResultT = TypeVar("ResultT")


class PanzaScreen(Screen[ResultT]):
    """A screen of Panza; ``ModalScreen`` forms put it first among their bases."""

    @property
    def panza(self) -> PanzaApp:
        """The app, as ``PanzaApp`` (screens are only ever pushed by it)."""
        return cast("PanzaApp", self.app)
