"""Read mail from files: mbox (incl. Google Takeout, mboxrd), maildir, .eml, Panza JSON lines.

Each reader yields ``(source, item)`` where ``source`` labels the message for error reports
("Sent.mbox#12") and ``item`` is the raw RFC 5322 bytes, or a dict for JSON lines.
"""

from __future__ import annotations

import json
import mailbox
import re
from collections.abc import Iterator
from pathlib import Path

from panza_tui.core.errors import ImportSourceError

_MBOXRD_QUOTE = re.compile(rb"^>(>*From )", re.M)

Item = bytes | dict


def detect(path: Path) -> str:
    """The kind of mail source at ``path``: mbox, maildir, eml-dir, eml or jsonl.

    Raises ``ImportSourceError`` if the path is missing or of no known kind.
    """
    if not path.exists():
        raise ImportSourceError(f"{path}: no such file or folder")
    if path.is_dir():
        if all((path / sub).is_dir() for sub in ("cur", "new")):
            return "maildir"
        if any(path.glob("*.eml")):
            return "eml-dir"
        raise ImportSourceError(
            f"{path}: a folder, but neither a maildir (cur/, new/) nor .eml files"
        )
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".json"}:
        return "jsonl"
    if suffix == ".eml":
        return "eml"
    with path.open("rb") as handle:
        head = handle.read(5)
    if head == b"From " or suffix in {".mbox", ".mbx"}:
        return "mbox"
    # A single message file (e.g. Enron's .txt) starts with headers.
    return "eml"


def read_mbox(path: Path) -> Iterator[tuple[str, bytes]]:
    """Messages of an mbox; ``>From `` lines are unquoted as in mboxrd."""
    box = mailbox.mbox(path, create=False)
    try:
        for number, key in enumerate(box.iterkeys()):
            raw = box.get_bytes(key)
            yield f"{path.name}#{number}", _MBOXRD_QUOTE.sub(rb"\1", raw)
    finally:
        box.close()


def read_maildir(path: Path) -> Iterator[tuple[str, bytes]]:
    """Messages of a maildir (cur/ and new/), in key order."""
    box = mailbox.Maildir(path, create=False)
    for key in sorted(box.iterkeys()):
        yield f"{path.name}/{key}", box.get_bytes(key)


def read_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    """Panza-style records: one JSON object a line with ``email`` and optional ``subject``."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            source = f"{path.name}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield source, {"_error": f"invalid JSON ({exc.msg})"}
                continue
            if not isinstance(record, dict) or not isinstance(record.get("email"), str):
                yield source, {"_error": "no 'email' string field"}
                continue
            yield source, record


def read(path: Path) -> Iterator[tuple[str, Item]]:
    """All messages at ``path``, whatever its kind (see ``detect``)."""
    kind = detect(path)
    try:
        if kind == "mbox":
            yield from read_mbox(path)
        elif kind == "maildir":
            yield from read_maildir(path)
        elif kind == "eml-dir":
            for file in sorted(path.glob("*.eml")):
                yield file.name, file.read_bytes()
        elif kind == "eml":
            yield path.name, path.read_bytes()
        else:
            yield from read_jsonl(path)
    except (OSError, mailbox.Error, UnicodeDecodeError) as exc:
        raise ImportSourceError(f"{path}: cannot read as {kind} ({exc})") from exc
