"""Read mail from files: any folder of them, walked recursively and sniffed file by file.

Layouts read: mbox files with or without an extension (Google Takeout, Thunderbird profiles,
mboxo or mboxrd, chosen per file), maildirs and Maildir++ trees (``.Sent/`` subfolders; a
notmuch or mu store is one), MH folders and the CMU Enron layout (numbered message files),
folders of ``.eml`` files, Apple Mail ``.emlx``, single messages, and Panza JSON lines.
Files that are none of these (indexes such as ``.msf``, ``.mh_sequences``, Dovecot's
``dovecot.index*``, settings) are reported as not mail rather than refused.

``walk`` yields ``Entry(folder, source, item)``: ``folder`` is the mail folder a message came
from (relative to the imported path), ``source`` labels it for reports ("Sent.mbox#12") and
``item`` is the raw RFC 5322 bytes, a dict for JSON lines, or None for a file that is not
mail.
"""

from __future__ import annotations

import json
import mailbox
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from panza_core.errors import ImportSourceError

Item = bytes | dict

_MBOXRD_QUOTE = re.compile(rb"^>(>*From )", re.M)  # mboxrd: one ">" less on every level
_MBOXO_QUOTE = re.compile(rb"^>(From )", re.M)  # mboxo: only ">From " was ever quoted
_HEADER = re.compile(rb"^[!-9;-~]+:")  # RFC 5322 2.2: printable ASCII but ":", then ":"
_SKIP_DIRS = {".notmuch", ".git", ".svn", "__MACOSX"}  # databases and tool folders
_MAILDIR_PARTS = ("cur", "new", "tmp")


@dataclass(frozen=True)
class Entry:
    """One file's or one message's outcome of the walk (``item`` None: not read, and
    ``skipped`` says why: ``not_mail``, or ``symlink`` for a link that was not followed)."""

    folder: str
    source: str
    item: Item | None
    skipped: str = "not_mail"


def is_maildir(path: Path) -> bool:
    """A maildir has ``cur/`` and ``new/`` (``tmp/`` may be missing in copies), neither of
    them a symbolic link (which could lead out of the imported folder)."""
    return all((path / part).is_dir() and not (path / part).is_symlink() for part in ("cur", "new"))


def looks_like_headers(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts with an RFC 5322 header block: a
    single message, wherever it lives and whatever its name. The first line must be a field;
    then two fields, or one ended by the blank line; broken lines are tolerated while they
    are at most half as many as the fields (real mail has them)."""
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    if not lines or not _HEADER.match(lines[0]):
        return False
    fields = broken = 0
    for line in lines[:-1]:  # the last may be cut mid-way
        if not line:
            return fields >= 1 and broken * 2 <= fields
        if line[:1] in (b" ", b"\t"):
            continue  # a folded header line
        if _HEADER.match(line):
            fields += 1
        else:
            broken += 1
    return fields >= 2 and broken * 2 <= fields


def sniff(file: Path) -> str | None:
    """The kind of one file: ``mbox``, ``eml``, ``emlx``, ``jsonl``, or None (not mail)."""
    suffix = file.suffix.lower()
    try:
        with file.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    if file.name.endswith(".emlx"):
        return "emlx"
    if suffix == ".eml":  # named as a message: if it is broken, extraction says how
        return "eml"
    if not head.strip():
        return "mbox" if suffix in {".mbox", ".mbx"} else None
    if head.startswith(b"From "):
        return "mbox"
    if suffix in {".jsonl", ".json", ".ndjson"}:
        first = head.lstrip().split(b"\n", 1)[0]
        try:
            record = json.loads(first)
        except ValueError:
            return None
        return "jsonl" if isinstance(record, dict) and "email" in record else None
    return "eml" if looks_like_headers(head.lstrip(b"\r\n")) else None


def detect(path: Path) -> str:
    """The kind of mail source at ``path``: ``folder`` (walked) or a file's kind (``sniff``;
    a single file that sniffs as nothing is read as one message, to report why it fails).

    Raises ``ImportSourceError`` if the path is missing.
    """
    if not path.exists():
        raise ImportSourceError(f"{path}: no such file or folder")
    return "folder" if path.is_dir() else (sniff(path) or "eml")


def read_mbox(path: Path) -> Iterator[tuple[str, bytes]]:
    """Messages of an mbox, ``>From `` lines unquoted as the file's flavour asks: mboxo for
    Mozilla's ("From - " separators; only ``>From `` was quoted), mboxrd otherwise (Takeout,
    mutt, Dovecot: every level of ``>``-quoted ``From `` carries one more ``>``)."""
    with path.open("rb") as handle:
        mboxo = handle.read(7) == b"From - "
        handle.seek(0)
        unquote = _MBOXO_QUOTE if mboxo else _MBOXRD_QUOTE
        for number, raw in enumerate(mbox_messages(handle)):
            yield f"{path.name}#{number}", unquote.sub(rb"\1", raw)


def mbox_messages(handle: BinaryIO) -> Iterator[bytes]:
    """The raw messages of an mbox file, read line by line: one message in memory at a
    time, whatever the file's size (``mailbox.mbox`` first indexes every message).

    Split as ``mailbox.mbox`` splits (every line starting with ``From `` starts a message;
    the empty line before it belongs to no message); the ``From `` line is dropped."""
    lines: list[bytes] | None = None
    last_was_empty = False
    for line in handle:
        if line.startswith(b"From "):
            if lines is not None:
                yield b"".join(lines[:-1] if last_was_empty else lines)
            lines, last_was_empty = [], False
            continue
        if lines is not None:
            lines.append(line)
        last_was_empty = line == b"\n"
    if lines is not None:
        yield b"".join(lines[:-1] if last_was_empty else lines)


def read_maildir(path: Path) -> Iterator[tuple[str, bytes | None]]:
    """``(source, raw)`` for the messages of a maildir (cur/ and new/), in key order; a
    message file that is a symbolic link is not read (it could point anywhere): its raw is
    None."""
    box = mailbox.Maildir(path, create=False)
    links = {
        entry.name.split(box.colon)[0]
        for part in ("cur", "new")
        for entry in os.scandir(path / part)
        if entry.is_symlink()
    }
    for key in sorted(box.iterkeys()):
        yield f"{path.name}/{key}", None if key in links else box.get_bytes(key)


def read_emlx(path: Path) -> bytes:
    """The message inside an Apple Mail ``.emlx``: a line with its length in bytes, the
    message, then a property list (dropped)."""
    data = path.read_bytes()
    first, _, rest = data.partition(b"\n")
    try:
        return rest[: int(first.strip())]
    except ValueError:
        return data  # not the usual layout: let extraction say what it is


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


def _file(file: Path, kind: str | None, folder: str, label: str) -> Iterator[Entry]:
    if kind is None:
        yield Entry(folder, label, None)
    elif kind == "mbox":
        for source, raw in read_mbox(file):
            yield Entry(folder, f"{label}#{source.rpartition('#')[2]}", raw)
    elif kind == "emlx":
        yield Entry(folder, label, read_emlx(file))
    elif kind == "jsonl":
        for source, record in read_jsonl(file):
            yield Entry(folder, f"{label}:{source.rpartition(':')[2]}", record)
    else:
        yield Entry(folder, label, file.read_bytes())


def walk(path: Path) -> Iterator[Entry]:
    """Every message and every non-mail file at ``path``, folder by folder in name order.
    Symbolic links inside the folder are not followed, to files (``Entry.skipped`` is
    ``symlink``) or to folders: an import reads only what lies in the folder given (a link
    given as ``path`` itself is followed). Raises ``ImportSourceError`` if ``path`` is
    missing or a file cannot be read."""
    kind = detect(path)
    try:
        if kind != "folder":
            yield from _file(path, kind, path.name, path.name)
            return
        for here, dirs, names in os.walk(path):
            folder_path = Path(here)
            relative = folder_path.relative_to(path)
            folder = str(relative) if str(relative) != "." else path.name
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
            if is_maildir(folder_path):
                dirs[:] = [d for d in dirs if d not in _MAILDIR_PARTS]
                for source, raw in read_maildir(folder_path):
                    label = str(relative / source.partition("/")[2])
                    yield Entry(folder, label, raw, "symlink" if raw is None else "not_mail")
            for name in sorted(names):
                file = folder_path / name
                label = str(relative / name) if str(relative) != "." else name
                if file.is_symlink():
                    yield Entry(folder, label, None, "symlink")
                    continue
                yield from _file(file, sniff(file), folder, label)
    except (OSError, mailbox.Error, UnicodeDecodeError) as exc:
        raise ImportSourceError(f"{path}: cannot read ({exc})") from exc


def read(path: Path) -> Iterator[tuple[str, Item]]:
    """``(source, item)`` for every message at ``path`` (``walk`` without non-mail files)."""
    for entry in walk(path):
        if entry.item is not None:
            yield entry.source, entry.item
