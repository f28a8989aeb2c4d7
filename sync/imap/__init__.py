"""Sent and received mail from an IMAP server with ``imapclient``, incrementally; drafts
back to it.

The sent folder is the user's own mail (learned from); INBOX is their received mail (read,
and answered from the app). Mail in INBOX from the user's own addresses (a mailing list's
copy of their post) counts as their own, and is stored once with its Sent copy.

Folders are found by SPECIAL-USE (RFC 6154: ``\\Sent``, ``\\Drafts``), then by common names.
The first sync fetches every message in batches with ``BODY.PEEK[]`` (never sets ``\\Seen``);
later ones fetch only UIDs above the last one seen, as long as the folder's UIDVALIDITY is
unchanged (RFC 3501 2.3.1.1; a change means the UIDs were reassigned, so the folder is
synced again from scratch). With CONDSTORE (RFC 7162) an unchanged HIGHESTMODSEQ proves
nothing was deleted, so the deletion check is skipped. Each batch is committed with the
last UID it reached, so an interrupted sync resumes there; messages re-fetched after an
interruption are recognised by Message-ID or content hash and not stored twice. Mail
deleted on the server stays in the store as a tombstone (``Store.mark_deleted``).

One module per job: ``server`` (settings, connection, login, errors), ``folders`` (finding
and syncing a folder), ``fetch`` (batches, prefetching, parsing workers), ``drafts``
(APPEND and cleanup), ``backend`` (the ``MailBackend``).
"""

from sync.imap.backend import ImapBackend
from sync.imap.drafts import DRAFT_NAMES, append_draft, now_header
from sync.imap.fetch import BATCH_BYTES, HEADER_BYTES, MAX_FETCH_BYTES, PARTIAL_BODY_BYTES, batches
from sync.imap.folders import SENT_NAMES, find_folder, sync, sync_folder
from sync.imap.server import (
    KIND,
    SECURITY,
    ImapServer,
    access_token,
    connect,
    security_mode,
    server_errors,
)

__all__ = [
    "BATCH_BYTES", "DRAFT_NAMES", "HEADER_BYTES", "KIND", "MAX_FETCH_BYTES",
    "PARTIAL_BODY_BYTES", "SECURITY", "SENT_NAMES", "ImapBackend", "ImapServer",
    "access_token", "append_draft", "batches", "connect", "find_folder", "now_header",
    "security_mode", "server_errors", "sync", "sync_folder",
]  # fmt: skip
