"""The registry of mail backends: a server settings' ``kind`` -> its ``MailBackend``.

Adding a backend is one module implementing ``sync.backend.MailBackend`` and one line here.
"""

from __future__ import annotations

from typing import Any

from panza_core.errors import AccountError
from sync.backend import MailBackend
from sync.gmail import GmailBackend
from sync.imap import ImapBackend

BACKENDS: dict[str, MailBackend] = {b.kind: b for b in (ImapBackend(), GmailBackend())}


def for_server(server: dict[str, Any]) -> MailBackend | None:
    """The backend of stored server settings, or None for a files-only account."""
    return BACKENDS.get(server.get("kind", ""))


def require(account: str, server: dict[str, Any]) -> MailBackend:
    """The backend of ``account``'s settings; ``AccountError`` if it has no server."""
    backend = for_server(server)
    if backend is None:
        raise AccountError(f"account {account!r} has no server: add one with 'panza account add'")
    return backend
