"""The local SQLite store: accounts, messages (sent and received), playback pairs, runs and
drafts.

One file (``panza.sqlite3`` in the Panza home), WAL journal so the TUI can read while a
worker writes. The schema is versioned with ``PRAGMA user_version`` and migrated forward.
Every method is a short transaction; a crash mid-import loses at most the message in hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panza_core import locations
from panza_core.errors import AccountError, PanzaError
from panza_core.schema import MIGRATIONS as _MIGRATIONS


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
    of its References; see ``store.thread_key``).
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


@dataclass
class Run:
    """A train, export or eval run; ``config``/``metrics`` are JSON-able dicts."""

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


_MESSAGE_COLUMNS = (
    "id, account, message_id, content_hash, folder, date, from_addr, to_addrs, cc_addrs, "
    "subject, text, in_reply_to, refs, source, uid, received, quoted, thread_id, deleted_at"
)


def _message(row: sqlite3.Row) -> Message:
    data = {key: row[key] for key in row.keys()}
    data["received"] = bool(data["received"])
    return Message(**data)


def thread_key(message: Message) -> str | None:
    """The conversation a message belongs to when the server names none: the first
    Message-ID of its References (the thread's root, RFC 5322 section 3.6.4), else the
    message it replies to, else its own Message-ID."""
    if message.refs and message.refs.split():
        return message.refs.split()[0]
    return message.in_reply_to or message.message_id


def _run(row: sqlite3.Row) -> Run:
    data = dict(row)
    data["config"] = json.loads(data["config"])
    data["metrics"] = json.loads(data["metrics"])
    return Run(**data)


class Store:
    """Access to the SQLite store; one object may be shared by threads.

    Each thread gets its own SQLite connection, opened on first use: a transaction held by
    one thread (a sync batch under ``BEGIN IMMEDIATE``) never swallows another thread's
    statements (a draft saved meanwhile), which wait for the write lock instead (busy
    timeout ``BUSY_TIMEOUT_S``). Raises ``PanzaError`` if the file is not a Panza database
    or is newer than this code.
    """

    BUSY_TIMEOUT_S = 60.0

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or locations.database_file()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: dict[int, tuple[threading.Thread, sqlite3.Connection]] = {}
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            locations.private(self.path)  # SQLite makes its -wal and -shm files alike
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise PanzaError(f"{self.path}: not a usable Panza database ({exc})") from exc

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (autocommit, rows as ``sqlite3.Row``, foreign keys on)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        return connection

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False only so that close() can close every thread's connection
        connection = sqlite3.connect(
            self.path, timeout=self.BUSY_TIMEOUT_S, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            # TUI workers are short-lived threads: close what the finished ones left open
            for ident, (thread, old) in list(self._connections.items()):
                if not thread.is_alive():
                    old.close()
                    del self._connections[ident]
            self._connections[threading.get_ident()] = (threading.current_thread(), connection)
        return connection

    def close(self) -> None:
        """Close every thread's SQLite connection; the store reopens them on next use."""
        with self._lock:
            for _, connection in self._connections.values():
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction (one commit instead of one per statement)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(_MIGRATIONS):
            raise PanzaError(
                f"{self.path} has schema {version}, newer than this Panza ({len(_MIGRATIONS)}): "
                "upgrade panza-tui"
            )
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            self.db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")

    # accounts ---------------------------------------------------------------------------

    def add_account(
        self, name: str, addresses: Iterable[str] = (), user_preamble: str = ""
    ) -> None:
        """Create ``name``, or add ``addresses`` to it if it exists."""
        locations.check_account_name(name)
        new = sorted({a.strip().lower() for a in addresses if a.strip()})
        row = self.db.execute("SELECT addresses FROM accounts WHERE name=?", (name,)).fetchone()
        if row is None:
            self.db.execute(
                "INSERT INTO accounts(name, addresses, user_preamble, created_at) VALUES (?,?,?,?)",
                (name, json.dumps(new), user_preamble, time.time()),
            )
            return
        merged = sorted(set(json.loads(row["addresses"])) | set(new))
        self.db.execute("UPDATE accounts SET addresses=? WHERE name=?", (json.dumps(merged), name))
        if user_preamble:
            self.db.execute(
                "UPDATE accounts SET user_preamble=? WHERE name=?", (user_preamble, name)
            )

    def account(self, name: str) -> sqlite3.Row:
        """The account row; raises ``AccountError`` naming the known accounts if missing."""
        row = self.db.execute("SELECT * FROM accounts WHERE name=?", (name,)).fetchone()
        if row is None:
            known = ", ".join(self.accounts()) or "none yet"
            raise AccountError(
                f"no account {name!r} (known: {known}); create it with 'panza import ... "
                f"--account {name}'"
            )
        return row

    def accounts(self) -> list[str]:
        """Account names, sorted."""
        return [r[0] for r in self.db.execute("SELECT name FROM accounts ORDER BY name")]

    def addresses(self, account: str) -> list[str]:
        """The account's own addresses (lower-case); raises ``AccountError``."""
        return json.loads(self.account(account)["addresses"])

    def remove_account(self, name: str) -> None:
        """Delete ``name`` with its messages, sync state, runs and drafts (foreign keys
        cascade); raises ``AccountError`` if there is no such account."""
        self.account(name)
        self.db.execute("DELETE FROM accounts WHERE name=?", (name,))

    def set_active_adapter(self, account: str, run_id: int | None) -> None:
        """Make export run ``run_id`` the model that drafts for ``account`` (None: base)."""
        self.account(account)
        self.db.execute("UPDATE accounts SET active_adapter=? WHERE name=?", (run_id, account))

    # messages ---------------------------------------------------------------------------

    def has_message(self, account: str, message: Message) -> bool:
        """True if the same Message-ID, or the same content hash, is stored already."""
        return self._stored_copy(account, message) is not None

    def _stored_copy(self, account: str, message: Message) -> sqlite3.Row | None:
        return self.db.execute(
            "SELECT id, folder, uid, deleted_at FROM messages WHERE account=? AND "
            "(content_hash=? OR message_id=?)",
            (account, message.content_hash, message.message_id),
        ).fetchone()

    def add_message(self, account: str, message: Message) -> int | None:
        """Insert ``message``; returns its row id, or None if it was a duplicate.

        A copy already stored is re-identified instead (its row id returned, its text kept)
        when it is a tombstone (the mail came back on the server) or was synced from the
        same folder and lost its UID (UIDVALIDITY changed): it takes the new UID, folder and
        source and is live again. A message with no ``thread_id`` joins its stored parent's
        thread when its References are missing (some clients send In-Reply-To alone), else
        gets ``thread_key``.
        """
        stored = self._stored_copy(account, message)
        if stored is not None:
            lost_uid = (message.uid is not None and stored["uid"] is None
                        and stored["folder"] == message.folder)  # fmt: skip
            if stored["deleted_at"] is None and not lost_uid:
                return None
            self.db.execute(
                "UPDATE messages SET folder=?, uid=?, source=?, deleted_at=NULL WHERE id=?",
                (message.folder, message.uid, message.source, stored["id"]),
            )
            return int(stored["id"])
        thread = message.thread_id
        if thread is None and not message.refs and message.in_reply_to:
            parent = self.by_message_id(account, message.in_reply_to)
            thread = parent.thread_id if parent is not None else None
        thread = thread or thread_key(message)
        cur = self._write(
            account,
            "INSERT INTO messages(account, message_id, content_hash, folder, date, from_addr, "
            "to_addrs, cc_addrs, subject, text, in_reply_to, refs, source, uid, received, "
            "quoted, thread_id, imported_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                account, message.message_id, message.content_hash, message.folder, message.date,
                message.from_addr, message.to_addrs, message.cc_addrs, message.subject,
                message.text, message.in_reply_to, message.refs, message.source, message.uid,
                int(message.received), message.quoted, thread, time.time(),
            ),
        )  # fmt: skip
        return cur.lastrowid

    def _write(self, account: str, sql: str, args: tuple) -> sqlite3.Cursor:
        """Execute a write for ``account``; ``AccountError`` if the account was removed
        meanwhile (by another thread or process: its foreign key fails)."""
        try:
            return self.db.execute(sql, args)
        except sqlite3.IntegrityError:
            self.account(account)  # raises AccountError when it is gone
            raise

    def by_message_id(self, account: str, message_id: str) -> Message | None:
        """The stored message with this Message-ID (angle brackets included), or None."""
        row = self.db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE account=? AND message_id=?",
            (account, message_id.strip()),
        ).fetchone()
        return None if row is None else _message(row)

    def thread(self, account: str, thread_id: str) -> list[Message]:
        """Every stored message of a conversation, sent and received, oldest first."""
        return self._oldest_first(account, "thread_id", thread_id)

    def replies_to(self, account: str, message_id: str) -> list[Message]:
        """Stored messages whose In-Reply-To is ``message_id``, oldest first."""
        return self._oldest_first(account, "in_reply_to", message_id)

    def _oldest_first(self, account: str, column: str, value: str) -> list[Message]:
        rows = self.db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE account=? AND {column}=? "
            "ORDER BY date IS NULL, date, id",
            (account, value),
        )
        return [_message(r) for r in rows]

    def messages(
        self, account: str, search: str = "", received: bool = False, deleted: bool = False
    ) -> list[Message]:
        """The account's sent messages (``received``: its received ones), newest first;
        ``search`` filters subject, text and addresses. Tombstones (mail deleted on the
        server) are left out, unless ``deleted``: then they are included."""
        query = f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE account=? AND received=?"
        query += "" if deleted else " AND deleted_at IS NULL"
        args: list[Any] = [account, int(received)]
        if search:
            query += " AND (subject LIKE ? OR text LIKE ? OR to_addrs LIKE ? OR from_addr LIKE ?)"
            args += [f"%{search}%"] * 4
        query += " ORDER BY date IS NULL, date DESC, id DESC"
        return [_message(r) for r in self.db.execute(query, args)]

    def own_hashes(self, account: str) -> dict[int, str]:
        """Store id -> content hash of every own (sent) email of ``account``, tombstones
        included: what the retrieval index must hold, without reading any text."""
        rows = self.db.execute(
            "SELECT id, content_hash FROM messages WHERE account=? AND received=0", (account,)
        )
        return dict(rows.fetchall())

    def messages_by_id(self, ids: Sequence[int]) -> list[Message]:
        """The messages with these store ids, in that order (missing ids left out)."""
        found: dict[int, Message] = {}
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            part = list(ids[start : start + 500])
            marks = ",".join("?" * len(part))
            rows = self.db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id IN ({marks})", part
            )
            found.update((row["id"], _message(row)) for row in rows)
        return [found[i] for i in ids if i in found]

    def message(self, message_id: int) -> Message:
        """One message by store id; raises ``PanzaError`` if there is none."""
        row = self.db.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id=?", (message_id,)
        ).fetchone()
        if row is None:
            raise PanzaError(f"no message with id {message_id}")
        return _message(row)

    def count_messages(self, account: str, received: bool = False) -> int:
        """How many sent (``received``: received) messages ``account`` has, tombstones not
        counted."""
        return self.db.execute(
            "SELECT COUNT(*) FROM messages WHERE account=? AND received=? AND deleted_at IS NULL",
            (account, int(received)),
        ).fetchone()[0]

    def count_new_since(self, account: str, since: float) -> int:
        """How many of the account's own emails were stored after ``since`` (Unix seconds):
        mail a model trained at that time has not seen."""
        return self.db.execute(
            "SELECT COUNT(*) FROM messages WHERE account=? AND received=0 AND imported_at>?",
            (account, since),
        ).fetchone()[0]

    def count_deleted(self, account: str) -> int:
        """How many tombstones (mail deleted on the server, kept here) ``account`` has."""
        return self.db.execute(
            "SELECT COUNT(*) FROM messages WHERE account=? AND deleted_at IS NOT NULL", (account,)
        ).fetchone()[0]

    def reply_counts(self, account: str) -> dict[str, int]:
        """The account's own mail by kind: ``with_parent`` (a reply whose parent is stored or
        quoted inside it), ``without_parent`` (a reply, In-Reply-To or "Re:", with neither),
        ``new`` (an email that starts a conversation)."""
        row = self.db.execute(
            "SELECT "
            "SUM(parent.id IS NOT NULL OR COALESCE(m.quoted, '') != ''), "
            "SUM(parent.id IS NULL AND COALESCE(m.quoted, '') = '' AND "
            "    (m.in_reply_to IS NOT NULL OR m.subject LIKE 're:%')), "
            "COUNT(*) FROM messages m LEFT JOIN messages parent "
            "ON parent.account=m.account AND parent.message_id=m.in_reply_to "
            "WHERE m.account=? AND m.received=0",
            (account,),
        ).fetchone()
        with_parent, without, total = (value or 0 for value in row)
        return {
            "with_parent": with_parent,
            "without_parent": without,
            "new": total - with_parent - without,
        }

    def mark_deleted(self, ids: Iterable[int]) -> int:
        """Make tombstones of messages deleted on the server (by store id): hidden from the
        mailbox (``messages``, ``count_messages``), their UID forgotten, still learned from
        and retrieved, until ``purge_deleted``. Returns how many."""
        ids = list(ids)
        now = time.time()
        self.db.executemany(
            "UPDATE messages SET deleted_at=?, uid=NULL WHERE id=? AND deleted_at IS NULL",
            [(now, i) for i in ids],
        )
        return len(ids)

    def purge_deleted(self, account: str) -> int:
        """Delete the account's tombstones for good; returns how many. Their ids are never
        used again (AUTOINCREMENT), so the retrieval index drops them when it reconciles."""
        return self.db.execute(
            "DELETE FROM messages WHERE account=? AND deleted_at IS NOT NULL", (account,)
        ).rowcount

    # server sync ------------------------------------------------------------------------

    def server(self, account: str) -> dict[str, Any]:
        """The account's server settings (JSON; no secrets), ``{}`` for file-only accounts."""
        return json.loads(self.account(account)["server"] or "{}")

    def set_server(self, account: str, settings: dict[str, Any]) -> None:
        """Store server settings for ``account``; secrets belong in ``panza_core.secrets``."""
        self.account(account)
        self.db.execute(
            "UPDATE accounts SET server=? WHERE name=?", (json.dumps(settings), account)
        )

    def last_sync(self, account: str) -> float | None:
        """When any folder of ``account`` last finished a sync batch (Unix seconds), or None."""
        row = self.db.execute(
            "SELECT MAX(synced_at) FROM sync_state WHERE account=?", (account,)
        ).fetchone()
        return row[0]

    def sync_state(self, account: str, folder: str) -> sqlite3.Row | None:
        """Per-folder sync state: UIDVALIDITY, last UID, HIGHESTMODSEQ, Gmail historyId."""
        return self.db.execute(
            "SELECT * FROM sync_state WHERE account=? AND folder=?", (account, folder)
        ).fetchone()

    def set_sync_state(self, account: str, folder: str, **fields: Any) -> None:
        """Create or update a folder's sync state with ``fields`` (columns of sync_state)."""
        self._write(
            account, "INSERT OR IGNORE INTO sync_state(account, folder) VALUES (?, ?)",
            (account, folder),
        )  # fmt: skip
        fields["synced_at"] = time.time()
        assignments = ", ".join(f"{name}=?" for name in fields)
        self.db.execute(
            f"UPDATE sync_state SET {assignments} WHERE account=? AND folder=?",
            (*fields.values(), account, folder),
        )

    def uids(self, account: str, folder: str) -> dict[int, int]:
        """IMAP UID -> store id for the messages synced from ``folder``."""
        rows = self.db.execute(
            "SELECT uid, id FROM messages WHERE account=? AND folder=? AND uid IS NOT NULL "
            "AND deleted_at IS NULL",
            (account, folder),
        )
        return {uid: row_id for uid, row_id in rows}

    def forget_folder(self, account: str, folder: str) -> None:
        """Forget a folder's UIDs and sync state (its UIDVALIDITY changed): the messages
        stay, and the next sync re-identifies each by Message-ID or content."""
        self.db.execute(
            "UPDATE messages SET uid=NULL WHERE account=? AND folder=?", (account, folder)
        )
        self.db.execute("DELETE FROM sync_state WHERE account=? AND folder=?", (account, folder))

    # playback pairs ---------------------------------------------------------------------

    def instruction(self, content_hash: str, model: str, prompt_hash: str) -> str | None:
        """The cached playback instruction for an email, model and prompt, or None."""
        row = self.db.execute(
            "SELECT instruction FROM pairs WHERE content_hash=? AND model=? AND prompt_hash=?",
            (content_hash, model, prompt_hash),
        ).fetchone()
        return None if row is None else row[0]

    def put_instruction(self, content_hash: str, model: str, prompt_hash: str, text: str) -> None:
        """Cache a playback instruction (committed at once, so playback resumes)."""
        self.db.execute(
            "INSERT OR REPLACE INTO pairs VALUES (?,?,?,?,?)",
            (content_hash, model, prompt_hash, text, time.time()),
        )

    def pairs(self, account: str, model: str, prompt_hash: str) -> Iterator[tuple[Message, str]]:
        """(message, instruction) for every message of ``account`` that has been played back."""
        rows = self.db.execute(
            f"SELECT {', '.join('m.' + c.strip() for c in _MESSAGE_COLUMNS.split(','))}, "
            "p.instruction FROM messages m JOIN pairs p ON p.content_hash=m.content_hash "
            "WHERE m.account=? AND m.received=0 AND p.model=? AND p.prompt_hash=? ORDER BY m.id",
            (account, model, prompt_hash),
        )
        for row in rows:
            data = dict(row)
            instruction = data.pop("instruction")
            data["received"] = bool(data["received"])
            yield Message(**data), instruction

    # runs -------------------------------------------------------------------------------

    def start_run(
        self, account: str, kind: str, input_hash: str, config: dict[str, Any],
        parent: int | None = None,
    ) -> int:  # fmt: skip
        """Record a ``running`` run of ``kind`` (train, export, eval); returns its id."""
        cur = self.db.execute(
            "INSERT INTO runs(account, kind, status, input_hash, config, parent, started_at) "
            "VALUES (?,?,?,?,?,?,?)",
            (account, kind, "running", input_hash, json.dumps(config), parent, time.time()),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish_run(
        self, run_id: int, status: str, path: str = "", metrics: dict[str, Any] | None = None
    ) -> None:
        """Mark a run ``done`` or ``failed`` with its output path and metrics."""
        self.db.execute(
            "UPDATE runs SET status=?, path=?, metrics=?, finished_at=? WHERE id=?",
            (status, path, json.dumps(metrics or {}), time.time(), run_id),
        )

    def reopen_run(self, run_id: int) -> None:
        """Mark a killed or failed run ``running`` again (``panza train --resume``)."""
        self.db.execute("UPDATE runs SET status='running', finished_at=NULL WHERE id=?", (run_id,))

    def run(self, run_id: int) -> Run:
        """One run by id; raises ``PanzaError`` if there is none."""
        row = self.db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise PanzaError(f"no run with id {run_id}")
        return _run(row)

    def find_run(self, account: str, kind: str, input_hash: str) -> Run | None:
        """The newest finished run of ``kind`` with the same inputs, to reuse its result."""
        row = self.db.execute(
            "SELECT * FROM runs WHERE account=? AND kind=? AND input_hash=? AND status='done' "
            "ORDER BY id DESC LIMIT 1",
            (account, kind, input_hash),
        ).fetchone()
        return None if row is None else _run(row)

    def latest_run(self, account: str, kind: str) -> Run | None:
        """The newest finished run of ``kind`` for ``account``, or None."""
        row = self.db.execute(
            "SELECT * FROM runs WHERE account=? AND kind=? AND status='done' "
            "ORDER BY id DESC LIMIT 1",
            (account, kind),
        ).fetchone()
        return None if row is None else _run(row)

    def runs(self, account: str, kind: str | None = None) -> list[Run]:
        """All runs of ``account`` (of ``kind`` if given), newest first, any status."""
        sql, args = "SELECT * FROM runs WHERE account=?", [account]
        if kind is not None:
            sql, args = sql + " AND kind=?", [account, kind]
        return [_run(row) for row in self.db.execute(sql + " ORDER BY id DESC", args)]

    # drafts -----------------------------------------------------------------------------

    def save_draft(
        self, account: str, instruction: str, text: str, retrieved: list[dict[str, Any]],
        draft_id: int | None = None, to_addrs: str = "", cc_addrs: str = "", subject: str = "",
        in_reply_to: str | None = None, refs: str | None = None,
    ) -> int:  # fmt: skip
        """Insert a draft, or update ``draft_id`` in place; returns the draft id."""
        now = time.time()
        fields = (instruction, text, json.dumps(retrieved), to_addrs, cc_addrs, subject,
                  in_reply_to, refs)  # fmt: skip
        if draft_id is not None:
            self.db.execute(
                "UPDATE drafts SET instruction=?, text=?, retrieved=?, to_addrs=?, cc_addrs=?, "
                "subject=?, in_reply_to=?, refs=?, updated_at=? WHERE id=?",
                (*fields, now, draft_id),
            )
            return draft_id
        cur = self.db.execute(
            "INSERT INTO drafts(account, instruction, text, retrieved, to_addrs, cc_addrs, "
            "subject, in_reply_to, refs, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (account, *fields, now, now),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def draft(self, draft_id: int) -> sqlite3.Row:
        """One draft by id; raises ``PanzaError`` if there is none."""
        row = self.db.execute("SELECT * FROM drafts WHERE id=?", (draft_id,)).fetchone()
        if row is None:
            raise PanzaError(f"no draft with id {draft_id}")
        return row

    _UNSET: Any = object()

    def set_draft_server(
        self, draft_id: int, server_ref: Any = _UNSET, server_error: Any = _UNSET,
        message_id: Any = _UNSET,
    ) -> None:  # fmt: skip
        """Record the server copy of a draft: its reference, the last error, its Message-ID."""
        fields = {
            name: value
            for name, value in (
                ("server_ref", server_ref),
                ("server_error", server_error),
                ("message_id", message_id),
            )  # fmt: skip
            if value is not self._UNSET
        }
        assignments = ", ".join(f"{name}=?" for name in fields)
        self.db.execute(f"UPDATE drafts SET {assignments} WHERE id=?", (*fields.values(), draft_id))

    def drafts(self, account: str) -> list[sqlite3.Row]:
        """The account's saved drafts, most recently edited first."""
        return list(
            self.db.execute(
                "SELECT * FROM drafts WHERE account=? ORDER BY updated_at DESC", (account,)
            )
        )
