"""The drafts table: drafts saved locally first, and the state of their server copy."""

from __future__ import annotations

import json
import time
from typing import Any

from panza_core.errors import PanzaError
from panza_core.store.database import Database
from panza_core.store.rows import Draft

_UNSET: Any = object()


class Drafts(Database):
    """Local drafts; ``sync.drafts`` uploads them and records the outcome here."""

    def save_draft(
        self, account: str, instruction: str, text: str, retrieved: list[dict[str, Any]],
        draft_id: int | None = None, to_addrs: str = "", cc_addrs: str = "", subject: str = "",
        in_reply_to: str | None = None, refs: str | None = None,
    ) -> int:  # fmt: skip
        """Insert a draft, or update ``draft_id`` in place; returns the draft id. Raises
        ``AccountError`` if the account is gone."""
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
        cur = self._write(
            account,
            "INSERT INTO drafts(account, instruction, text, retrieved, to_addrs, cc_addrs, "
            "subject, in_reply_to, refs, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (account, *fields, now, now),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def draft(self, draft_id: int) -> Draft:
        """One draft by id; raises ``PanzaError`` if there is none."""
        row = self.db.execute("SELECT * FROM drafts WHERE id=?", (draft_id,)).fetchone()
        if row is None:
            raise PanzaError(f"no draft with id {draft_id}")
        return Draft.from_row(row)

    def set_draft_server(
        self, draft_id: int, server_ref: Any = _UNSET, server_error: Any = _UNSET,
        message_id: Any = _UNSET,
    ) -> None:  # fmt: skip
        """Record the server copy of a draft: its reference, the last error, its Message-ID
        (each only when given; None clears it)."""
        fields = {
            name: value
            for name, value in (
                ("server_ref", server_ref),
                ("server_error", server_error),
                ("message_id", message_id),
            )  # fmt: skip
            if value is not _UNSET
        }
        assignments = ", ".join(f"{name}=?" for name in fields)
        self.db.execute(f"UPDATE drafts SET {assignments} WHERE id=?", (*fields.values(), draft_id))

    def drafts(self, account: str) -> list[Draft]:
        """The account's saved drafts, most recently edited first."""
        rows = self.db.execute(
            "SELECT * FROM drafts WHERE account=? ORDER BY updated_at DESC", (account,)
        )
        return [Draft.from_row(row) for row in rows]
