"""Turn one raw RFC 5322 message into the user's own words, or a reason to skip it.

The rules follow Panza's data preparation (arXiv 2407.10994, section 4), done with the
standard library's ``email`` package: keep only mail sent from the account's addresses,
prefer text/plain and fall back to HTML converted to text, decode every charset and RFC 2047
header, strip quoted replies, "On ... wrote:" attributions and forwarded blocks, and drop
forwarded-only, empty and very short emails. Nothing here raises on bad input: a message the
parser chokes on comes back as ``Skip("unparseable", why)``.
"""

from __future__ import annotations

import binascii
import email
import email.policy
import email.utils
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from email.header import Header, decode_header, make_header
from email.message import Message as RawMessage

from panza_core.store import Message

# Reasons a message is not kept, in the order the checks run.
REASONS = ("unparseable", "not_from_account", "empty", "forwarded", "too_short", "duplicate")


@dataclass
class Skip:
    """Why a message was not kept: ``reason`` is one of ``REASONS``, ``detail`` says more."""

    reason: str
    detail: str = ""


# A reply's quoted part starts at one of these lines; everything from there on is dropped.
_REPLY_HEADERS = [
    re.compile(r"^-{2,}\s*Original Message\s*-{2,}\s*$", re.I),
    re.compile(r"^_{10,}\s*$"),  # Outlook's rule above "From: ... Sent: ..."
]
_FORWARD_HEADERS = [
    re.compile(r"^-{2,}\s*Forwarded (message|by)\b.*$", re.I),
    re.compile(r"^Begin forwarded message:\s*$", re.I),
]
# "On Tue, 3 May 2022 at 10:00, Jane <jane@x.org> wrote:", possibly wrapped over 2-3 lines.
# Some clients (Yahoo) put the quoted text on the same line, so only "wrote:" must be there;
# a date or address in it keeps ordinary sentences ("On Monday Tom wrote: ...") safe.
_ATTRIBUTION = re.compile(
    r"^(On|Am|Le|El|Il)\s(?=.{0,300}?[0-9@]).{4,300}?\s"
    r"(wrote|schrieb|a écrit|escribió|ha scritto)\s?:",
    re.I | re.S,
)
_SIGNATURE = re.compile(r"^-- ?$")
_HEADER_FROM = re.compile(r"^(From|Von|De):\s")
_HEADER_TO = re.compile(r"^To:\s")
_QUOTE_HEADER = re.compile(
    r"^\*?(From|Sent|Date|To|Cc|Subject|Von|Gesendet|An|Betreff|De|Envoyé|À|Objet)\*?:", re.I
)
_BLANK_RUNS = re.compile(r"\n{3,}")
# Every marker above starts with one of these characters; other lines skip the regexes
# (quote stripping runs over every line of every synced message).
_MARKER_STARTS = frozenset("-_BOALEIFVDT")
_FWD_SUBJECT = re.compile(r"^\s*(fwd?|wg|tr)\s*:", re.I)


def _header(msg: RawMessage, name: str, notes: list[str] | None = None) -> str:
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


@dataclass
class Parts:
    """A body split into the writer's own text and the original it quoted.

    ``own``: the writer's words (quotes, attribution, signature and forwarded block removed);
    ``quoted``: the quoted original's own words, one level of ``>`` removed and its own
    quotes dropped ("" if the message quoted nothing); ``forwarded``: a forwarded block was
    cut off (a forward's content is never taken as a quoted original).
    """

    own: str
    quoted: str = ""
    forwarded: bool = False


def _unquote(lines: list[str]) -> str:
    """One level of ``>`` quoting removed from each line."""
    out = []
    for line in lines:
        bare = line.lstrip()
        out.append(bare[1:].removeprefix(" ") if bare.startswith(">") else line)
    return "\n".join(out)


def split_quoted(text: str, with_quoted: bool = True) -> Parts:
    """Split a body at its quoted reply, attribution ("On ... wrote:", "-----Original
    Message-----", Outlook and Lotus Notes headers), forwarded block or ``-- `` signature.

    The quoted original keeps the replied-to email's own words, so a reply can be learned
    and drafted with the email it answers (``with_quoted=False`` skips that: the split of
    the quoted original itself). Never raises.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    forwarded = False
    cut = len(lines)
    after_marker: int | None = None  # where the quoted original starts, after a reply marker
    signature = False
    dropped: set[int] = set()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped[0] not in _MARKER_STARTS:
            continue
        if any(p.match(stripped) for p in _FORWARD_HEADERS):
            cut, forwarded = i, True
            break
        if _SIGNATURE.match(line.rstrip("\n")):
            cut, signature = i, True
            break
        if any(p.match(stripped) for p in _REPLY_HEADERS):
            cut = i
            # A bare rule opens Outlook's quoted header only when "From:" follows; above a
            # mailing list's footer it quotes nothing.
            following = [s.strip() for s in lines[i + 1 : i + 3]]
            if not stripped.startswith("_") or any(_HEADER_FROM.match(s) for s in following):
                after_marker = i + 1
            break
        if stripped.startswith(("On ", "Am ", "Le ", "El ", "Il ")):
            span = next(
                (n for n in (1, 2, 3)
                 if _ATTRIBUTION.match(" ".join(s.strip() for s in lines[i : i + n]))),
                0,
            )  # fmt: skip
            if span:
                after = next((s for s in lines[i + span :] if s.strip()), "")
                if after.lstrip().startswith(">"):
                    # Bottom-posting: the user's text may follow the quote; drop only the
                    # attribution (quoted lines go below).
                    dropped.update(range(i, i + span))
                    continue
                cut, after_marker = i, i + span
                break
        # Outlook / Lotus Notes reply header: "From: ..." then "Sent:"/"To:" within 3 lines.
        if i > 0 and _HEADER_FROM.match(stripped):
            following = [s.strip().lower() for s in lines[i + 1 : i + 4]]
            if any(s.startswith(("sent:", "date:", "to:", "gesendet:")) for s in following):
                cut = after_marker = i
                break
        if _HEADER_TO.match(stripped) and any(
            s.strip().lower().startswith("cc:") for s in lines[i + 1 : i + 3]
        ):
            # Lotus Notes puts "Name\nDate\nTo:\ncc:\nSubject:"; back up over name and date.
            start = i
            while start > 0 and i - start < 3 and lines[start - 1].strip():
                start -= 1
            cut = after_marker = start
            break
    own = [
        line.rstrip()
        for i, line in enumerate(lines[:cut])
        if i not in dropped and not line.lstrip().startswith(">")
    ]
    result = _BLANK_RUNS.sub("\n\n", "\n".join(own)).strip()
    quoted = ""
    if not with_quoted or forwarded:
        pass
    elif signature:
        # A quote may follow the signature (top-posting clients put it there); blanking any
        # further "-- " lines keeps this to one level of recursion on hostile input.
        rest = ["" if _SIGNATURE.match(line) else line for line in lines[cut + 1 :]]
        quoted = split_quoted("\n".join(rest)).quoted
    elif after_marker is not None:
        original = _unquote(lines[after_marker:]).split("\n")
        while original and (not original[0].strip() or _QUOTE_HEADER.match(original[0].strip())):
            original.pop(0)  # the "From: / Sent: / To:" block names the original, not its text
        quoted = split_quoted("\n".join(original), with_quoted=False).own
    else:
        inline = [line for line in lines[:cut] if line.lstrip().startswith(">")]
        quoted = split_quoted(_unquote(inline), with_quoted=False).own if inline else ""
    return Parts(result, quoted, forwarded)


def strip_quoted(text: str) -> tuple[str, bool]:
    """Remove quoted replies, attributions, forwarded blocks and a ``-- `` signature.

    Returns (the user's own text, whether a forwarded block was cut off).
    """
    parts = split_quoted(text)
    return parts.own, parts.forwarded


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


def parse(raw: bytes) -> RawMessage:
    """Parse RFC 5322 bytes. The ``compat32`` policy is used on purpose: the modern policy
    parses every header into objects, ten times slower, and we read only a few of them."""
    return email.message_from_bytes(raw, policy=email.policy.compat32)


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
        from_value = _header(msg, "From", notes)
        received = addresses is not None and not set(_addresses(from_value)) & set(addresses)
        if received and not keep_received:
            return Skip("not_from_account", from_value)
        subject = _header(msg, "Subject", notes)
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
        message_id = _header(msg, "Message-ID").strip() or None
        return Message(
            text=text,
            subject=subject,
            message_id=message_id,
            folder=folder,
            date=_iso_date(_header(msg, "Date")),
            from_addr=from_value,
            to_addrs=_header(msg, "To"),
            cc_addrs=_header(msg, "Cc"),
            in_reply_to=_first_id(_header(msg, "In-Reply-To")),
            refs=_header(msg, "References") or None,
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
