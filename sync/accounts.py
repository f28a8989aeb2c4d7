"""Account operations, once for the CLI and the app: add, list, test the login, sync, upload
a draft, remove.

Adding tests the login before anything is stored; secrets go to the keyring (``secrets``),
server settings (no secrets) to the store. Syncing, testing, uploading drafts and removing
go through the account's backend (``sync.backends``) and never ask its kind; only adding
an account (``add_imap``, ``add_gmail``) and the IMAP form's ``imap_settings`` name one,
since that is where the kind is chosen.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panza_core import locations, secrets
from panza_core.errors import AccountError
from panza_core.secrets import Secret
from panza_core.workspace import Workspace
from sync import backends, drafts
from sync.backend import MailBackend, Progress, SyncReport
from sync.gmail import GmailBackend
from sync.imap import ImapBackend, ImapServer


@dataclass(frozen=True)
class Added:
    """An account just added: what its login found, and where its secret was stored
    (``"the system keyring"`` or the 0600 file)."""

    name: str
    found: str
    secret_stored_in: str


@dataclass(frozen=True)
class Summary:
    """One account for lists: ``server`` as its backend describes it (``"files only"``
    without one), ``last_sync`` in Unix seconds (None: never), ``drafts_waiting`` whose
    upload failed, ``active_export`` the export run that drafts (None: the base model)."""

    name: str
    server: str
    emails: int
    addresses: tuple[str, ...]
    last_sync: float | None
    drafts_waiting: int
    active_export: int | None


@dataclass(frozen=True)
class SyncResult:
    """A sync's report plus the drafts it uploaded and the emails it indexed."""

    report: SyncReport
    drafts_saved: int
    drafts_failing: int
    indexed: int


def _secret_key(account: str, backend: MailBackend) -> str:
    return f"{account}:{backend.kind}"


def _store_secret(key: str, value: Secret) -> str:
    where = secrets.set_secret(key, value)
    return "the system keyring" if where == "keyring" else f"{where} (no keyring here; mode 0600)"


def summaries(ws: Workspace) -> list[Summary]:
    """Every account, sorted by name."""
    store = ws.store
    rows = []
    for name in store.accounts():
        backend = backends.for_server(store.server(name))
        rows.append(Summary(
            name=name,
            server=backend.describe(store.server(name)) if backend else "files only",
            emails=store.count_messages(name),
            addresses=tuple(store.addresses(name)),
            last_sync=store.last_sync(name),
            drafts_waiting=sum(1 for d in store.drafts(name) if d.server_error),
            active_export=store.account(name).active_export,
        ))  # fmt: skip
    return rows


def has_server(ws: Workspace, account: str) -> bool:
    """True if ``account`` syncs with a server (drafts are then uploaded there)."""
    return backends.for_server(ws.store.server(account)) is not None


def imap_settings(ws: Workspace, account: str) -> ImapServer | None:
    """The IMAP settings of ``account`` (for an edit form), None if it is not on IMAP."""
    server = ws.store.server(account)
    return ImapServer.from_json(server) if server.get("kind") == ImapBackend.kind else None


def server_secret(ws: Workspace, account: str) -> tuple[MailBackend, dict[str, Any], Secret]:
    """(backend, server settings, secret) of ``account``; ``AccountError`` if either the
    server or the secret is missing."""
    server = ws.store.server(account)
    backend = backends.require(account, server)
    secret = secrets.get_secret(_secret_key(account, backend))
    if secret is None:
        raise AccountError(f"no stored secret for {account!r}: run 'panza account add' again")
    return backend, server, secret


def add_imap(
    ws: Workspace, name: str, server: ImapServer, secret: Secret | None, addresses: list[str]
) -> Added:
    """Log in to ``server`` and, if that works, add (or update) account ``name``.

    ``secret``: the password or OAuth token (wrap what the user typed in ``Secret`` as soon
    as it is read); None keeps the stored one (an edit). Addresses
    default to the login when it is an address. Raises ``AuthError``/``SyncError`` from the
    login (nothing stored then), ``AccountError`` for a bad name or a missing secret.
    """
    locations.check_account_name(name)
    backend = ImapBackend()
    if secret is None:
        secret = secrets.get_secret(f"{name}:{backend.kind}")
        if secret is None:
            raise AccountError(f"no stored password for {name!r}: type one")
    found = backend.test_login(server.to_json(), secret)
    ws.store.add_account(name, addresses or ([server.user] if "@" in server.user else []))
    ws.store.set_server(name, server.to_json())
    return Added(name, found, _store_secret(_secret_key(name, backend), secret))


def add_gmail(
    ws: Workspace, name: str, client_secrets: Path, api_root: str = "",
    addresses: list[str] | None = None,
) -> Added:  # fmt: skip
    """Ask Google for consent in the browser (``sync.oauth``), then add account ``name``.

    ``client_secrets``: the JSON of an OAuth "Desktop app" client. Raises ``AccountError``
    for an unreadable file, ``AuthError`` if consent does not complete, ``SyncError`` for an
    ``api_root`` that is not https (http only to loopback).
    """
    from sync import gmail, oauth

    locations.check_account_name(name)
    gmail.settings("", api_root)  # a bad api_root is refused before the browser opens
    creds = oauth.authorize_installed_app(read_client_secrets(client_secrets))
    return add_gmail_with(ws, name, creds, api_root, addresses)


def read_client_secrets(path: Path) -> dict[str, Any]:
    """The JSON of an OAuth "Desktop app" client; ``AccountError`` if unreadable."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AccountError(f"{path}: not a readable client secrets file ({exc})") from exc
    if not isinstance(config, dict) or not ({"installed", "web"} & set(config)):
        raise AccountError(f"{path}: not an OAuth client secrets file (no 'installed' client)")
    return config


def add_gmail_with(
    ws: Workspace, name: str, creds: Any, api_root: str = "", addresses: list[str] | None = None
) -> Added:
    """Add Gmail account ``name`` with consented ``creds`` (``sync.oauth``); its address
    comes from the Gmail profile. Raises ``AuthError``/``SyncError``."""
    from sync import gmail

    locations.check_account_name(name)
    address = gmail.profile_email(creds, api_root)
    ws.store.add_account(name, addresses or [address])
    ws.store.set_server(name, gmail.settings(address, api_root))
    key = f"{name}:{GmailBackend.kind}"
    token = Secret(json.dumps(gmail.token_json(creds)))
    return Added(name, f"Gmail {address}", _store_secret(key, token))


def test_login(ws: Workspace, account: str) -> str:
    """Log in to ``account``'s server and out again; returns what the login found.
    Raises ``AccountError``, ``AuthError`` or ``SyncError``."""
    backend, server, secret = server_secret(ws, account)
    return backend.test_login(server, secret)


def sync(
    ws: Workspace, account: str, progress: Progress | None = None, index: bool = True
) -> SyncResult:
    """Fetch ``account``'s new sent and received mail, retry drafts whose upload failed, and
    bring the retrieval index up to date (mail deleted on the server stays, as a tombstone
    the user may purge: it is still their writing). Raises
    ``AccountError``, ``AuthError`` or ``SyncError``; finished batches are kept."""
    backend, server, secret = server_secret(ws, account)
    synced = backend.sync(ws.store, account, server, secret, ws.config.imports.min_words, progress)
    if synced.secret != secret:
        secrets.set_secret(_secret_key(account, backend), synced.secret)
    saved, failing = drafts.retry_failed(ws.store, account, synced.secret)
    indexed = 0
    if index:
        indexed = ws.update_index(account)
    return SyncResult(synced.report, saved, failing, indexed)


def upload_draft(ws: Workspace, account: str, draft_id: int) -> str:
    """Put local draft ``draft_id`` in the server's drafts (``sync.drafts.save``)."""
    _, _, secret = server_secret(ws, account)
    return drafts.save(ws.store, account, draft_id, secret)


def remove(ws: Workspace, account: str) -> None:
    """Delete ``account``: its store rows (emails, runs, drafts), secrets and folder
    (adapters, exports, index). Raises ``AccountError`` if there is no such account."""
    ws.store.remove_account(account)
    for backend in backends.BACKENDS.values():
        secrets.delete_secret(_secret_key(account, backend))
    shutil.rmtree(locations.account_dir(account), ignore_errors=True)
