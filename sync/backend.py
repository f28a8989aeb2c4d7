"""What every kind of mail server offers Panza: the ``MailBackend`` protocol and its result.

A backend is stateless: the server settings (a JSON object in the store, no secrets) and
the secret (from the keyring) are passed to each call. ``sync.backends`` maps a settings'
``kind`` to its backend; ``sync.accounts`` is the only caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from panza_core.secrets import Secret
from panza_core.store import Store
from sync.importer import ImportReport

Progress = Callable[[int, int], None]  # (messages done, messages to fetch)
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def require_tls_url(url: str, what: str) -> str:
    """``url`` if it is ``https://``, or ``http://`` to this machine (loopback); raises
    ``SyncError`` otherwise: a token or refresh token must never cross a network in clear,
    the same rule as for plain IMAP."""
    from urllib.parse import urlsplit

    from panza_core.errors import SyncError

    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK):
        return url
    raise SyncError(
        f"refusing to send {what} to {url}: not https (http is allowed to this machine only)"
    )


@dataclass
class SyncReport(ImportReport):
    """What one folder's sync did: counts by outcome (as an import), ids added and removed."""

    folder: str = ""
    deleted_ids: list[int] = field(default_factory=list)
    resynced: bool = False  # the server's state changed: the folder was read from scratch

    def merge(self, other: SyncReport) -> None:
        """Add another folder's sync to this report (counts, deletions, errors; folders joined)."""
        self.counts.update(other.counts)
        self.errors += other.errors
        self.notes.update(other.notes)
        self.deleted_ids += other.deleted_ids
        self.resynced = self.resynced or other.resynced
        self.folder = ", ".join(filter(None, [self.folder, other.folder]))


@dataclass(frozen=True)
class Synced:
    """A backend's sync: the report, and the secret to store from now on (a refreshed
    OAuth token, or the same secret)."""

    report: SyncReport
    secret: Secret


@runtime_checkable
class MailBackend(Protocol):
    """One kind of mail server (IMAP, the Gmail API).

    ``kind`` names it in the stored settings (``{"kind": "imap", ...}``) and in the secret's
    keyring key (``"<account>:<kind>"``). Every method raises ``AuthError`` when the server
    refuses the secret and ``SyncError`` when it cannot be reached or fails mid-way.
    """

    kind: str

    def describe(self, server: dict[str, Any]) -> str:
        """One line for lists: ``"IMAP imap.example.org"``."""
        ...

    def test_login(self, server: dict[str, Any], secret: Secret) -> str:
        """Log in and out again; returns what was found (``"sent folder 'Sent'"``)."""
        ...

    def sync(
        self, store: Store, account: str, server: dict[str, Any], secret: Secret, min_words: int,
        progress: Progress | None = None,
    ) -> Synced:  # fmt: skip
        """Fetch new sent mail into the store, drop what the server deleted."""
        ...

    def save_draft(
        self, server: dict[str, Any], secret: Secret, raw: bytes, previous: str | None,
        store: Store, account: str,
    ) -> str:  # fmt: skip
        """Put ``raw`` (RFC 5322 bytes) in the server's drafts, replacing the draft
        ``previous`` refers to; returns the new reference (IMAP UID, Gmail draft id, or
        ``""`` where the server does not say)."""
        ...
