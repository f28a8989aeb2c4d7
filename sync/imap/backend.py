"""``ImapBackend``: the IMAP ``MailBackend`` that ``sync.backends`` registers."""

from __future__ import annotations

from typing import Any

from panza_core.secrets import Secret
from panza_core.store import Store
from sync.backend import Progress, Synced
from sync.imap.drafts import append_draft
from sync.imap.folders import SENT_NAMES, find_folder, sync
from sync.imap.server import KIND, ImapServer, connect, logout, server_errors


class ImapBackend:
    """``MailBackend`` for IMAP: password, XOAUTH2 or OAUTHBEARER logins (``ImapServer``)."""

    kind = KIND

    def describe(self, server: dict[str, Any]) -> str:
        return f"IMAP {server.get('host', '')}"

    def test_login(self, server: dict[str, Any], secret: Secret) -> str:
        settings = ImapServer.from_json(server)
        client = connect(settings, secret)
        try:
            with server_errors(settings, "listing the folders"):
                folder = find_folder(client, b"\\Sent", SENT_NAMES, settings.sent)
        finally:
            logout(client)
        return f"sent folder '{folder}'"

    def sync(
        self, store: Store, account: str, server: dict[str, Any], secret: Secret, min_words: int,
        progress: Progress | None = None,
    ) -> Synced:  # fmt: skip
        return Synced(sync(store, account, secret, min_words, progress=progress), secret)

    def save_draft(
        self, server: dict[str, Any], secret: Secret, raw: bytes, previous: str | None,
        store: Store, account: str,
    ) -> str:  # fmt: skip
        uid = append_draft(store, account, secret, raw, int(previous) if previous else None)
        return str(uid) if uid is not None else ""
