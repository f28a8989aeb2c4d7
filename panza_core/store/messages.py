"""The messages table: the user's sent and received mail, its threads and tombstones."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from panza_core.errors import PanzaError
from panza_core.store.accounts import Accounts
from panza_core.store.rows import (
    MESSAGE_COLUMNS,
    Listed,
    Message,
    message_from_row,
    thread_key,
)

_COLUMNS = ", ".join(MESSAGE_COLUMNS)


class Messages(Accounts):
    """Mail of every account: add (deduplicated), look up, list, count, tombstone."""

    def has_message(self, account: str, message: Message) -> bool:
        """True if the same Message-ID, or the same content hash, is stored already."""
        return self._stored_copy(account, message) is not None

    def _stored_copy(self, account: str, message: Message) -> Any:
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
        gets ``thread_key``. Raises ``AccountError`` if the account is gone.
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

    def by_message_id(self, account: str, message_id: str) -> Message | None:
        """The stored message with this Message-ID (angle brackets included), or None."""
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE account=? AND message_id=?",
            (account, message_id.strip()),
        ).fetchone()
        return None if row is None else message_from_row(row)

    def thread(self, account: str, thread_id: str) -> list[Message]:
        """Every stored message of a conversation, sent and received, oldest first."""
        return self._oldest_first(account, "thread_id", thread_id)

    def replies_to(self, account: str, message_id: str) -> list[Message]:
        """Stored messages whose In-Reply-To is ``message_id``, oldest first."""
        return self._oldest_first(account, "in_reply_to", message_id)

    def _oldest_first(self, account: str, column: str, value: str) -> list[Message]:
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE account=? AND {column}=? "
            "ORDER BY date IS NULL, date, id",
            (account, value),
        )
        return [message_from_row(r) for r in rows]

    def messages(
        self, account: str, search: str = "", received: bool = False, deleted: bool = False
    ) -> list[Message]:
        """The account's sent messages (``received``: its received ones), newest first;
        ``search`` filters subject, text and addresses. Tombstones (mail deleted on the
        server) are left out, unless ``deleted``: then they are included."""
        rows = self._box(_COLUMNS, account, search, received, deleted)
        return [message_from_row(r) for r in rows]

    def listing(self, account: str, search: str = "", received: bool = False) -> list[Listed]:
        """What a mailbox list shows of the same messages as ``messages`` (tombstones left
        out), without reading their text: a filter keystroke reads only these columns."""
        rows = self._box("id, date, from_addr, to_addrs, subject", account, search, received)
        return [Listed(**dict(r)) for r in rows]

    def _box(
        self, columns: str, account: str, search: str, received: bool, deleted: bool = False
    ) -> Iterable[Any]:
        query = f"SELECT {columns} FROM messages WHERE account=? AND received=?"
        query += "" if deleted else " AND deleted_at IS NULL"
        args: list[Any] = [account, int(received)]
        if search:
            query += " AND (subject LIKE ? OR text LIKE ? OR to_addrs LIKE ? OR from_addr LIKE ?)"
            args += [f"%{search}%"] * 4
        query += " ORDER BY date IS NULL, date DESC, id DESC"
        return self.db.execute(query, args)

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
            rows = self.db.execute(f"SELECT {_COLUMNS} FROM messages WHERE id IN ({marks})", part)
            found.update((row["id"], message_from_row(row)) for row in rows)
        return [found[i] for i in ids if i in found]

    def message(self, message_id: int) -> Message:
        """One message by store id; raises ``PanzaError`` if there is none."""
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE id=?", (message_id,)
        ).fetchone()
        if row is None:
            raise PanzaError(f"no message with id {message_id}")
        return message_from_row(row)

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
