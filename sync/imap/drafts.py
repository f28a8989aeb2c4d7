"""Drafts back to the server: APPEND with ``\\Draft``, earlier copies of the same draft
removed without purging anyone else's mail."""

from __future__ import annotations

import email.utils
import re
import time
from typing import Any

from panza_core.secrets import Secret
from panza_core.store import Store
from sync.imap.folders import find_folder
from sync.imap.server import ImapServer, connect, logout, server_errors

DRAFT_NAMES = ("Drafts", "[Gmail]/Drafts", "INBOX.Drafts", "Draft")
_APPENDUID = re.compile(rb"APPENDUID \d+ (\d+)")


def append_draft(
    store: Store, account: str, secret: Secret, raw: bytes, previous_uid: int | None = None
) -> int | None:
    """APPEND a draft (RFC 5322 bytes) to the drafts folder with ``\\Draft``, then remove its
    earlier copies so they do not pile up: ``previous_uid`` and every message in the folder
    with the draft's Message-ID (a server without UIDPLUS never told us the UID). Returns
    the new UID (from APPENDUID, RFC 4315, else found by Message-ID), or None.

    Raises ``SyncError``/``AuthError``.
    """
    server = ImapServer.from_json(store.server(account))
    message_id = str(email.message_from_bytes(raw).get("Message-ID") or "").strip()
    client = connect(server, secret)
    try:
        with server_errors(server, "saving the draft"):
            folder = find_folder(client, b"\\Drafts", DRAFT_NAMES, server.drafts)
            client.select_folder(folder)
            old = set(_with_message_id(client, message_id))
            old |= {previous_uid} if previous_uid is not None else set()
            response = client.append(folder, raw, flags=[b"\\Draft"], msg_time=None)
            match = _APPENDUID.search(response or b"")
            uid = int(match.group(1)) if match else None
            if uid is None:
                client.select_folder(folder)  # see the appended message
                found = set(_with_message_id(client, message_id)) - old
                uid = max(found) if found else None
            _remove(client, sorted(old - {uid}))
            return uid
    finally:
        logout(client)


def _with_message_id(client: Any, message_id: str) -> list[int]:
    """UIDs in the selected folder whose Message-ID header is ``message_id``."""
    if not message_id:
        return []
    return [int(uid) for uid in client.search(["HEADER", "Message-ID", message_id])]


def _remove(client: Any, uids: list[int]) -> None:
    """Delete ``uids`` from the selected folder without purging anyone else's mail: UID
    EXPUNGE (RFC 4315) where the server has UIDPLUS; otherwise a plain EXPUNGE only when no
    other message is flagged ``\\Deleted`` (another client's pending deletion is theirs to
    purge), else the old copies stay flagged ``\\Deleted``, which mail clients hide."""
    if not uids:
        return
    client.delete_messages(uids)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
    elif set(client.search(["DELETED"])) <= set(uids):
        client.expunge()


def now_header() -> str:
    """An RFC 5322 Date header value for now, in local time."""
    return email.utils.formatdate(time.time(), localtime=True)
