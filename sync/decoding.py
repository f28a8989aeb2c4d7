"""Reading a raw message's parts as text with the standard library's ``email``: headers
(RFC 2047 encoded words, decoded in pieces so a hostile header stays linear), bodies in
their charset (8-bit bytes guessed, noted), text/plain preferred, HTML converted to text
with ``html2text``. Nothing here raises on bad input; what had to be guessed goes in
``notes``."""

from __future__ import annotations

import binascii
import email
import email.policy
import itertools
import re
from collections.abc import Iterator
from email.header import Header, decode_header, make_header
from email.message import Message as RawMessage


def header(msg: RawMessage, name: str, notes: list[str] | None = None) -> str:
    """A header as text: RFC 2047 encoded words decoded, raw UTF-8 (RFC 6532) kept, broken
    encodings decoded leniently, folded whitespace collapsed."""
    try:
        value = msg.get(name)
    except Exception:  # a malformed header must not lose the message
        return ""
    if value is None:
        return ""
    if isinstance(value, Header):  # compat32 wraps undecodable 8-bit bytes: use the raw text
        value = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), "")
    text = str(value)
    if any("\udc80" <= c <= "\udcff" for c in text):  # undecoded 8-bit bytes
        text = _eight_bit(text.encode("ascii", "surrogateescape"), notes)
    if "=?" in text:
        text = decode_words(text)
    return " ".join(text.split())


_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([QqBb])\?([^?\s]*)\?=")
DECODE_PIECE = 4096  # characters the stdlib decodes at once; its time grows as their square
DECODE_MOST = 16384  # a piece with no clean cut is cut here anyway (a hostile header)


def decode_words(text: str) -> str:
    """``text`` with its RFC 2047 encoded words decoded, in time linear in its length.

    The standard library's ``decode_header`` joins the adjacent words of one charset with
    ``bytes +=``, which is quadratic: a 1 MB Subject took seconds, 20 MB (under the IMAP
    size cap) would take many minutes. So a header longer than ``DECODE_PIECE`` is cut into
    pieces of about that size, each decoded by the standard library, with the same result:
    a cut falls only between two adjacent encoded words (nothing but whitespace between
    them, which RFC 2047 6.2 drops) of the same charset, other than us-ascii (around which
    the standard library adds spaces), where the first word decodes on its own (a sender
    may split a character across words, though RFC 2047 5 forbids it). A piece that does
    not decode is kept as it is. A header with no such cut for ``DECODE_MOST`` characters
    (built to defeat this: every word a half character, or an unknown charset) is cut between
    any two adjacent words there, which may leave a word there undecoded.
    """
    if len(text) <= DECODE_PIECE:
        return _decode_piece(text)[0]
    pieces: list[str] = []
    gaps: list[str] = []  # the whitespace dropped at each cut
    start, last = 0, None
    for match in _ENCODED_WORD.finditer(text):
        if (
            last is not None
            and match.start() - start > DECODE_PIECE
            and not text[last.end() : match.start()].strip()
            and (match.start() - start > DECODE_MOST or _cuttable(last, match))
        ):
            pieces.append(text[start : last.end()])
            gaps.append(text[last.end() : match.start()])
            start = match.start()
        last = match
    pieces.append(text[start:])
    decoded = [_decode_piece(piece) for piece in pieces]
    out = [decoded[0][0]]
    for gap, (before, after) in zip(gaps, itertools.pairwise(decoded), strict=True):
        if not (before[1] and after[1]):
            out.append(gap)  # next to text kept as it came, the whitespace stays too
        out.append(after[0])
    return "".join(out)


def _cuttable(before: re.Match[str], after: re.Match[str]) -> bool:
    """Whether decoding stops at the end of word ``before`` as it would go on into ``after``:
    one charset (not us-ascii) on both sides, and ``before`` whole characters by itself."""
    charset = before.group(1).lower()
    if charset != after.group(1).lower() or charset in ("us-ascii", "ascii"):
        return False
    payload = before.group(3)
    try:
        if before.group(2) in "Bb":
            raw = binascii.a2b_base64(payload + "=" * (-len(payload) % 4))
        else:
            raw = binascii.a2b_qp(payload, header=True)
        raw.decode(charset)
    except (ValueError, LookupError):  # a bad word, an unknown charset, a split character
        return False
    return True


def _decode_piece(text: str) -> tuple[str, bool]:
    """``text`` decoded, and True; or as it came, and False, if it does not decode."""
    try:
        return str(make_header(decode_header(text))), True
    except Exception:  # a broken encoded word, an unknown charset: the text as it came
        return text, False


def _eight_bit(raw: bytes, notes: list[str] | None = None) -> str:
    """Raw 8-bit header bytes (RFC 6532 allows UTF-8; old clients sent their own code page):
    UTF-8 if they are, else cp1252, else latin-1, which decodes anything (noted in
    ``notes`` as ``8bit_header``)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if notes is not None:
        notes.append("8bit_header")
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _decode_part(part: RawMessage, notes: list[str] | None = None) -> str:
    """A leaf part's text: transfer encoding undone, then its charset; utf-8 for unknown or
    lying charsets, then the declared charset with bad bytes replaced, then cp1252, latin-1
    as the last resort."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        payload = str(part.get_payload()).encode("utf-8", "replace")
    declared = part.get_content_charset()
    for charset in (declared, "utf-8"):
        if not charset:
            continue
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeError):  # unknown, lying, or "idna" on long lines
            if charset == declared and notes is not None:
                notes.append("charset_fallback")
            continue
    try:  # a known charset with a few bad bytes (a cut multi-byte sequence) beats a guess
        if declared and declared not in ("us-ascii", "ascii", "idna"):
            return payload.decode(declared, "replace")
    except (LookupError, UnicodeError):
        pass
    try:
        return payload.decode("cp1252")
    except UnicodeDecodeError:
        return payload.decode("latin-1")


def _own_leaves(part: RawMessage) -> Iterator[RawMessage]:
    """The leaf parts of a message, not descending into attached messages (message/*)."""
    if part.get_content_maintype() == "message":
        return
    if part.is_multipart():
        for sub in part.get_payload():
            if isinstance(sub, RawMessage):
                yield from _own_leaves(sub)
    else:
        yield part


def html_to_text(html: str) -> str:
    """Readable plain text from an HTML body (links inline, no wrapping), via html2text."""
    import html2text

    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ignore_links = True
    return converter.handle(html)


def body_text(msg: RawMessage, notes: list[str] | None = None) -> str:
    """The message's body as text: first inline text/plain, else text/html converted.

    Attachments (Content-Disposition: attachment) are never taken as the body, and neither
    is an attached email (message/rfc822, a forward as attachment), even when the sender's
    own part is HTML only and the attached email has plain text.
    """
    plain: RawMessage | None = None
    html: RawMessage | None = None
    for part in _own_leaves(msg):
        disposition = str(part.get("Content-Disposition") or "").lower()
        if disposition.startswith("attachment"):
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and plain is None:
            plain = part
        elif kind == "text/html" and html is None:
            html = part
    if plain is not None:
        text = _decode_part(plain, notes)
        if text.strip() or html is None:
            return text
    if html is not None:
        return html_to_text(_decode_part(html, notes))
    return ""


def parse(raw: bytes) -> RawMessage:
    """Parse RFC 5322 bytes. The ``compat32`` policy is used on purpose: the modern policy
    parses every header into objects, ten times slower, and we read only a few of them."""
    return email.message_from_bytes(raw, policy=email.policy.compat32)
