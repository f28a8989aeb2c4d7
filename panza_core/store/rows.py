"""The rows the store hands out, one dataclass per table, and the dedupe and thread keys.

Callers read fields (``account.active_export``), never columns by name: a renamed column
is then a change here and in the SQL, not in every caller.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any


def content_hash(subject: str, text: str) -> str:
    """SHA-256 (hex, 64 chars) of an email's subject and normalised body; the dedupe key."""
    normal = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return hashlib.sha256(f"{subject.strip()}\n\n{normal}".encode()).hexdigest()


@dataclass
class Message:
    """One email as stored: its own text, quotes and attribution removed.

    ``received`` is False for the user's own (sent) mail, the only mail learned from, and
    True for mail they received, kept for reading and as the email a reply answers.
    ``quoted`` is the quoted original a reply carried (None if it quoted nothing), and
    ``thread_id`` the conversation it belongs to (Gmail's threadId, else the root Message-ID
    of its References; see ``thread_key``).
    """

    text: str
    subject: str = ""
    message_id: str | None = None
    folder: str = ""
    date: str | None = None
    from_addr: str = ""
    to_addrs: str = ""
    cc_addrs: str = ""
    in_reply_to: str | None = None
    refs: str | None = None
    source: str = ""
    uid: int | None = None  # IMAP UID in ``folder`` when synced from a server
    received: bool = False
    quoted: str | None = None
    thread_id: str | None = None
    deleted_at: float | None = None  # when the server deleted it (a tombstone), else None
    notes: tuple[str, ...] = field(default=(), compare=False)  # how reading it had to guess;
    # set by extraction for the import report, not stored
    id: int | None = None
    account: str = ""
    content_hash: str = field(default="")

    def __post_init__(self) -> None:
        if not self.content_hash:
            self.content_hash = content_hash(self.subject, self.text)


MESSAGE_COLUMNS = (
    "id", "account", "message_id", "content_hash", "folder", "date", "from_addr", "to_addrs",
    "cc_addrs", "subject", "text", "in_reply_to", "refs", "source", "uid", "received",
    "quoted", "thread_id", "deleted_at",
)  # fmt: skip


@dataclass(frozen=True)
class Listed:
    """One email as a mailbox list shows it: store id, ISO date, From, To, Subject; its
    text is not read (``Store.message`` reads it when it is opened)."""

    id: int
    date: str | None
    from_addr: str
    to_addrs: str
    subject: str


def message_from_row(row: sqlite3.Row) -> Message:
    """A ``Message`` from a row holding ``MESSAGE_COLUMNS`` (extra columns ignored)."""
    data = {key: row[key] for key in MESSAGE_COLUMNS}
    data["received"] = bool(data["received"])
    return Message(**data)


def thread_key(message: Message) -> str | None:
    """The conversation a message belongs to when the server names none: the first
    Message-ID of its References (the thread's root, RFC 5322 section 3.6.4), else the
    message it replies to, else its own Message-ID."""
    if message.refs and message.refs.split():
        return message.refs.split()[0]
    return message.in_reply_to or message.message_id


@dataclass(frozen=True)
class Account:
    """One account: its own ``addresses`` (lower-case), the preamble its prompts carry,
    the export run that drafts for it (``active_export``, None: the newest export, else the
    base model) and its ``server`` settings (JSON-able, no secrets; ``{}``: files only)."""

    name: str
    addresses: list[str]
    user_preamble: str
    active_export: int | None
    created_at: float
    server: dict[str, Any]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Account:
        """The account in an ``accounts`` row."""
        return cls(
            name=row["name"], addresses=json.loads(row["addresses"]),
            user_preamble=row["user_preamble"], active_export=row["active_export"],
            created_at=row["created_at"], server=json.loads(row["server"] or "{}"),
        )  # fmt: skip


@dataclass(frozen=True)
class Run:
    """A train, export or eval run; ``config``/``metrics`` are JSON-able dicts, times are
    Unix seconds, ``parent`` the run it came from (an export's training run)."""

    id: int
    account: str
    kind: str
    status: str
    input_hash: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    path: str
    parent: int | None
    started_at: float
    finished_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Run:
        """The run in a ``runs`` row."""
        data = dict(row)
        data["config"] = json.loads(data["config"])
        data["metrics"] = json.loads(data["metrics"])
        return cls(**data)


@dataclass(frozen=True)
class Draft:
    """A saved draft: the instruction, the text, the emails retrieval showed beside it
    (``retrieved``: JSON-able dicts with ``id`` and ``score``), its headers, and its server
    copy (``server_ref``: IMAP UID or Gmail draft id; ``server_error``: why the last upload
    failed, None if it did not)."""

    id: int
    account: str
    instruction: str
    text: str
    retrieved: list[dict[str, Any]]
    created_at: float
    updated_at: float
    to_addrs: str
    cc_addrs: str
    subject: str
    in_reply_to: str | None
    refs: str | None
    message_id: str | None
    server_ref: str | None
    server_error: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Draft:
        """The draft in a ``drafts`` row."""
        data = dict(row)
        data["retrieved"] = json.loads(data["retrieved"])
        return cls(**data)


@dataclass(frozen=True)
class SyncState:
    """Where the last sync of one folder stopped: UIDVALIDITY, the last UID fetched and
    HIGHESTMODSEQ (IMAP, RFC 3501 and RFC 7162), or Gmail's historyId; ``synced_at`` in Unix
    seconds."""

    account: str
    folder: str
    uidvalidity: int | None
    last_uid: int
    highestmodseq: int | None
    history_id: str | None
    synced_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> SyncState:
        """The state in a ``sync_state`` row."""
        return cls(**dict(row))
