"""Turn one raw RFC 5322 message into the user's own words, or a reason to skip it.

The rules follow Panza's data preparation (arXiv 2407.10994, section 4), done with the
standard library's ``email`` package: keep only mail sent from the account's addresses,
prefer text/plain and fall back to HTML converted to text, decode every charset and RFC 2047
header, strip quoted replies, "On ... wrote:" attributions and forwarded blocks, and drop
forwarded-only, empty and very short emails. Nothing here raises on bad input: a message the
parser chokes on comes back as ``Skip("unparseable", why)``.

Reading the parts is ``sync.decoding``; telling the user's words from quotes is
``sync.quoting``; this module applies the rules and builds the stored ``Message``.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import UTC

from panza_core.store import Message
from sync.decoding import body_text, decode_words, header, parse
from sync.quoting import Parts, split_quoted, strip_quoted

# Reasons a message is not kept, in the order the checks run.
REASONS = ("unparseable", "not_from_account", "empty", "forwarded", "too_short", "duplicate")


@dataclass
class Skip:
    """Why a message was not kept: ``reason`` is one of ``REASONS``, ``detail`` says more."""

    reason: str
    detail: str = ""


_FWD_SUBJECT = re.compile(r"^\s*(fwd?|wg|tr)\s*:", re.I)


def _addresses(value: str) -> list[str]:
    return [addr.lower() for _, addr in email.utils.getaddresses([value]) if "@" in addr]


def _iso_date(value: str) -> str | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clean_text(text: str, subject: str, min_words: int) -> tuple[str, Skip | None]:
    """Apply the body rules to text: (own text, None) if kept, else (text, Skip)."""
    own, skip, _ = _clean(split_quoted(text), subject, min_words)
    return own, skip


def _clean(parts: Parts, subject: str, min_words: int) -> tuple[str, Skip | None, str]:
    own = parts.own
    words = len(own.split())
    if words == 0:
        return own, Skip("forwarded" if parts.forwarded else "empty"), parts.quoted
    if words < min_words and (parts.forwarded or _FWD_SUBJECT.match(subject)):
        return own, Skip("forwarded", f"{words} words of own text"), parts.quoted
    if words < min_words:
        return own, Skip("too_short", f"{words} words < {min_words}"), parts.quoted
    return own, None, parts.quoted


def extract(
    raw: bytes, addresses: list[str] | None, min_words: int = 10, source: str = "",
    folder: str = "", keep_received: bool = False,
) -> Message | Skip:  # fmt: skip
    """One raw message to a stored ``Message``, or a ``Skip`` saying why not.

    ``addresses``: the account's own addresses (lower-case); None takes every message as the
    user's own. Mail from other addresses is ``Skip("not_from_account")``, or with
    ``keep_received`` a received ``Message``: its own text (the whole body if it only
    forwards or quotes), no length rule, kept for reading and replying, never for style.
    """
    try:
        notes: list[str] = []  # where decoding had to guess; counted by the import report
        msg = parse(raw)
        from_value = header(msg, "From", notes)
        received = addresses is not None and not set(_addresses(from_value)) & set(addresses)
        if received and not keep_received:
            return Skip("not_from_account", from_value)
        subject = header(msg, "Subject", notes)
        body = body_text(msg, notes)
        parts = split_quoted(body)
        if received:
            text, skip, quoted = parts.own or body.strip(), None, parts.quoted
            if not text:
                skip = Skip("empty")
        else:
            text, skip, quoted = _clean(parts, subject, min_words)
        if skip:
            return skip
        message_id = header(msg, "Message-ID").strip() or None
        return Message(
            text=text,
            subject=subject,
            message_id=message_id,
            folder=folder,
            date=_iso_date(header(msg, "Date")),
            from_addr=from_value,
            to_addrs=header(msg, "To"),
            cc_addrs=header(msg, "Cc"),
            in_reply_to=_first_id(header(msg, "In-Reply-To")),
            refs=header(msg, "References") or None,
            source=source,
            received=received,
            quoted=quoted or None,
            notes=tuple(dict.fromkeys(notes)),
        )
    except Exception as exc:  # a parser bug on hostile input must not stop an import
        return Skip("unparseable", f"{type(exc).__name__}: {exc}")


def _first_id(value: str) -> str | None:
    """The Message-ID in an In-Reply-To header. RFC 5322 allows several; old clients add
    text ("<id> (Jane's message of ...)"), so take the first ``<...>`` when there is one."""
    found = re.search(r"<[^<>\s]+>", value)
    return found.group(0) if found else (value.strip() or None)


__all__ = [
    "REASONS", "Message", "Skip", "body_text", "clean_text", "decode_words", "extract",
    "parse", "strip_quoted",
]  # fmt: skip
