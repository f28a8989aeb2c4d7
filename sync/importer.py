"""Import a mail source into the store, counting every message by what happened to it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from panza_tui.core.store import Message, Store
from sync import extract, files


@dataclass
class ImportReport:
    """Counts by outcome: ``kept`` (the user's own mail), ``received``, and one key per skip
    reason (see ``extract.REASONS``)."""

    counts: Counter = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (source, why) unparseable
    new_ids: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        """All messages seen, whatever their outcome."""
        return sum(self.counts.values())

    def record(
        self, store: Store, account: str, source: str, result: Message | extract.Skip
    ) -> int | None:
        """Count one extracted message and store it if kept; returns its new row id."""
        if isinstance(result, extract.Skip):
            self.counts[result.reason] += 1
            if result.reason == "unparseable":
                self.errors.append((source, result.detail))
            return None
        row = store.add_message(account, result)
        if row is None:
            self.counts["duplicate"] += 1
        else:
            self.counts["received" if result.received else "kept"] += 1
            self.new_ids.append(row)
        return row


def import_path(
    store: Store, account: str, path: Path, min_words: int = 10,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:  # fmt: skip
    """Import every message at ``path`` into ``account``; idempotent.

    In mail files, messages from the account's addresses are its own mail and every other
    message is kept as received mail (a Takeout mbox holds both); an account without
    addresses takes every message as its own. JSON lines are taken as the user's own mail.
    Duplicates (same Message-ID or same content hash) are counted, not stored twice.
    Raises ``ImportSourceError`` if ``path`` is unreadable.
    """
    addresses = store.addresses(account) or None
    report = ImportReport()
    for source, item in files.read(path):
        if isinstance(item, dict):
            result = _from_record(item, min_words, source)
        else:
            result = extract.extract(
                item, addresses, min_words, source=source, folder=path.name, keep_received=True
            )
        report.record(store, account, source, result)
        if progress:
            progress(1)
    return report


def _from_record(record: dict, min_words: int, source: str) -> Message | extract.Skip:
    if "_error" in record:
        return extract.Skip("unparseable", record["_error"])
    subject = str(record.get("subject") or "")
    text, skip = extract.clean_text(record["email"], subject, min_words)
    if skip:
        return skip
    return Message(
        text=text,
        subject=subject,
        message_id=record.get("message_id"),
        date=record.get("date"),
        source=source,
        folder="jsonl",
    )
