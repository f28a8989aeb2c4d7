"""One sync of one account, whatever its server: what ``panza sync`` and the TUI both run.

Fetches new sent mail (IMAP or Gmail), retries drafts whose upload failed, and brings the
retrieval index up to date (removing emails deleted on the server).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from panza_tui import secrets
from panza_tui.errors import AccountError
from panza_tui.workspace import Workspace
from sync import drafts
from sync.imap import SyncReport


@dataclass
class SyncResult:
    """A sync's report plus the drafts it uploaded and the emails it indexed."""

    report: SyncReport
    drafts_saved: int
    drafts_failing: int
    indexed: int


def server_secret(ws: Workspace, account: str) -> tuple[dict[str, Any], str]:
    """(server settings, secret) of ``account``; raises ``AccountError`` if either is missing."""
    server = ws.store.server(account)
    kind = server.get("kind")
    if kind not in ("imap", "gmail"):
        raise AccountError(f"account {account!r} has no server: add one with 'panza account add'")
    secret = secrets.get_secret(f"{account}:{kind}")
    if secret is None:
        raise AccountError(f"no stored secret for {account!r}: run 'panza account add' again")
    return server, secret


def sync_account(
    ws: Workspace, account: str, progress: Callable[[int, int], None] | None = None,
    index: bool = True,
) -> SyncResult:  # fmt: skip
    """Sync ``account``; raises ``AccountError``, ``AuthError`` or ``SyncError``."""
    server, secret = server_secret(ws, account)
    min_words = ws.config.imports.min_words
    if server["kind"] == "imap":
        from sync import imap

        report = imap.sync(ws.store, account, secret, min_words, progress=progress)
    else:
        from sync import gmail

        creds = gmail.credentials(json.loads(secret))
        report = gmail.sync(
            ws.store, account, creds, server.get("root_url", ""), min_words, progress
        )
        secret = json.dumps(gmail.token_json(creds))  # the access token may have been refreshed
        secrets.set_secret(f"{account}:gmail", secret)
    saved, failing = drafts.retry_failed(ws.store, account, secret)
    indexed = 0
    if index:
        if report.deleted_ids:
            ws.index(account).remove(report.deleted_ids)
        indexed = ws.update_index(account)
    return SyncResult(report, saved, failing, indexed)
