"""The sync_state table: where each folder's last sync stopped, and its UID map."""

from __future__ import annotations

import time

from panza_core.store.database import Database
from panza_core.store.rows import SyncState

_FIELDS = frozenset({"uidvalidity", "last_uid", "highestmodseq", "history_id"})


class SyncStates(Database):
    """Per-folder sync state (IMAP UIDVALIDITY, last UID, HIGHESTMODSEQ; Gmail historyId)."""

    def last_sync(self, account: str) -> float | None:
        """When any folder of ``account`` last finished a sync batch (Unix seconds), or None."""
        row = self.db.execute(
            "SELECT MAX(synced_at) FROM sync_state WHERE account=?", (account,)
        ).fetchone()
        return row[0]

    def sync_state(self, account: str, folder: str) -> SyncState | None:
        """The folder's sync state, or None if it was never synced (or was forgotten)."""
        row = self.db.execute(
            "SELECT * FROM sync_state WHERE account=? AND folder=?", (account, folder)
        ).fetchone()
        return None if row is None else SyncState.from_row(row)

    def set_sync_state(self, account: str, folder: str, **fields: int | str | None) -> None:
        """Create or update a folder's sync state with ``fields`` (``uidvalidity``,
        ``last_uid``, ``highestmodseq``, ``history_id``); ``synced_at`` becomes now. Raises
        ``ValueError`` for another name, ``AccountError`` if the account is gone."""
        unknown = set(fields) - _FIELDS
        if unknown:
            raise ValueError(f"not sync state: {', '.join(sorted(unknown))}")
        self._write(
            account, "INSERT OR IGNORE INTO sync_state(account, folder) VALUES (?, ?)",
            (account, folder),
        )  # fmt: skip
        values = {**fields, "synced_at": time.time()}
        assignments = ", ".join(f"{name}=?" for name in values)
        self.db.execute(
            f"UPDATE sync_state SET {assignments} WHERE account=? AND folder=?",
            (*values.values(), account, folder),
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
