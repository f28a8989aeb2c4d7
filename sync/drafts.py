"""Saving a draft back to the user's server, so their other mail clients see it.

The draft is always saved locally first; the server copy follows. A failed upload keeps
the draft and records why (``server_error``), and the next save or sync retries it, so no
typed text is ever lost. Each local draft keeps one Message-ID for its whole life, and the
server's previous copy is replaced rather than piled up.
"""

from __future__ import annotations

import email.utils
from email.message import EmailMessage

from panza_core.errors import PanzaError, SyncError
from panza_core.secrets import Secret
from panza_core.store import Draft, Store
from sync import backends


def build_message(draft: Draft, from_addr: str) -> bytes:
    """RFC 5322 bytes of a draft: From, To, Cc, Subject, Date, Message-ID, threading headers.

    Raises ``PanzaError`` if the draft has no Message-ID yet (``save`` assigns one).
    """
    if not draft.message_id:
        raise PanzaError(f"draft #{draft.id} has no Message-ID")
    message = EmailMessage()
    message["From"] = from_addr
    if draft.to_addrs:
        message["To"] = draft.to_addrs
    if draft.cc_addrs:
        message["Cc"] = draft.cc_addrs
    message["Subject"] = draft.subject
    message["Date"] = email.utils.formatdate(localtime=True)
    message["Message-ID"] = draft.message_id
    if draft.in_reply_to:
        message["In-Reply-To"] = draft.in_reply_to
        message["References"] = draft.refs or draft.in_reply_to
    message.set_content(draft.text)
    return bytes(message)


def save(store: Store, account: str, draft_id: int, secret: Secret) -> str:
    """Upload one local draft to the account's server; returns the server's reference
    (IMAP UID or Gmail draft id). ``secret``: the IMAP password, or the Gmail token JSON.

    Raises ``SyncError``/``AuthError`` after recording the reason on the draft.
    """
    draft = store.draft(draft_id)
    if not draft.message_id:
        domain = (store.addresses(account) or ["panza.local"])[0].rpartition("@")[2]
        store.set_draft_server(draft_id, message_id=email.utils.make_msgid(domain=domain))
        draft = store.draft(draft_id)
    addresses = store.addresses(account)
    server = store.server(account)
    backend = backends.require(account, server)
    from_addr = addresses[0] if addresses else server.get("user", "")
    raw = build_message(draft, from_addr)
    try:
        ref = backend.save_draft(server, secret, raw, draft.server_ref or None, store, account)
    except SyncError as exc:
        store.set_draft_server(draft_id, server_error=str(exc))
        raise
    store.set_draft_server(draft_id, server_ref=ref, server_error=None)
    return ref


def retry_failed(store: Store, account: str, secret: Secret) -> tuple[int, int]:
    """Upload every draft whose last upload failed; returns (saved, still failing)."""
    saved = failing = 0
    for draft in store.drafts(account):
        if draft.server_error:
            try:
                save(store, account, draft.id, secret)
                saved += 1
            except SyncError:
                failing += 1
    return saved, failing
