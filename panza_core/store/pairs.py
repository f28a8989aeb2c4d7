"""The pairs table: playback instructions cached by email, model and prompt."""

from __future__ import annotations

import time
from collections.abc import Iterator

from panza_core.store.database import Database
from panza_core.store.rows import MESSAGE_COLUMNS, Message, message_from_row


class Pairs(Database):
    """Cached playback instructions (Panza, arXiv 2407.10994), keyed by the email's content
    hash, the playback model and the prompt's hash, so a rerun plays back only new mail."""

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
            f"SELECT {', '.join('m.' + c for c in MESSAGE_COLUMNS)}, p.instruction "
            "FROM messages m JOIN pairs p ON p.content_hash=m.content_hash "
            "WHERE m.account=? AND m.received=0 AND p.model=? AND p.prompt_hash=? ORDER BY m.id",
            (account, model, prompt_hash),
        )
        for row in rows:
            yield message_from_row(row), row["instruction"]
