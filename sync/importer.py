"""Import a mail source into the store, counting every message by what happened to it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from panza_core.errors import ImportSourceError
from panza_core.store import Message, Store
from sync import extract, files


@dataclass
class ImportReport:
    """Counts by outcome: ``kept`` (the user's own mail), ``received``, ``not_mail`` (a file
    of the imported folder that is no mail), and one key per skip reason (see
    ``extract.REASONS``); ``folders``: the same counts per mail folder of a folder import."""

    counts: Counter = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (source, why) unparseable
    folders: dict[str, Counter] = field(default_factory=dict)
    notes: Counter = field(default_factory=Counter)  # decoding guesses: charset_fallback...

    def count(self, outcome: str, folder: str = "") -> None:
        """Count one message (or file) with ``outcome``, in ``folder`` if given."""
        self.counts[outcome] += 1
        if folder:
            self.folders.setdefault(folder, Counter())[outcome] += 1

    @property
    def total(self) -> int:
        """All messages seen, whatever their outcome."""
        return sum(self.counts.values())

    def record(
        self, store: Store, account: str, source: str, result: Message | extract.Skip,
        folder: str = "",
    ) -> int | None:  # fmt: skip
        """Count one extracted message and store it if kept; returns its new row id."""
        if isinstance(result, extract.Skip):
            self.count(result.reason, folder)
            if result.reason == "unparseable":
                self.errors.append((source, result.detail))
            return None
        self.notes.update(result.notes)
        row = store.add_message(account, result)
        if row is None:
            self.count("duplicate", folder)
        else:
            self.count("received" if result.received else "kept", folder)
        return row


def import_path(
    store: Store, account: str, path: Path, min_words: int = 10,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:  # fmt: skip
    """Import every message at ``path`` into ``account``; idempotent.

    In mail files, messages from the account's addresses are its own mail and every other
    message is kept as received mail (a Takeout mbox holds both); an account without
    addresses takes every message as its own. JSON lines are taken as the user's own mail.
    Duplicates (same Message-ID or same content hash) are counted, not stored twice. A
    folder is walked recursively (``files.walk``); files in it that are not mail are counted
    as ``not_mail``, symbolic links (not followed) as ``symlink``. Raises
    ``ImportSourceError`` if ``path`` is unreadable or holds no mail.
    """
    addresses = store.addresses(account) or None
    report = ImportReport()
    folder_import = path.is_dir()
    for entry in files.walk(path):
        where = entry.folder if folder_import else ""
        if entry.item is None:
            report.count(entry.skipped, where)
            continue
        if isinstance(entry.item, dict):
            result = _from_record(entry.item, min_words, entry.source)
        else:
            result = extract.extract(
                entry.item, addresses, min_words, source=entry.source, folder=entry.folder,
                keep_received=True,
            )  # fmt: skip
        report.record(store, account, entry.source, result, where)
        if progress:
            progress(1)
    if report.total == report.counts["not_mail"] + report.counts["symlink"]:
        raise ImportSourceError(
            f"{path}: no mail found ({report.counts['not_mail']} files, none of them an "
            "email, mbox, maildir, .emlx or Panza JSON lines)"
        )
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
