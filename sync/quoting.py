"""Splitting an email's own words from what it quotes: reply headers, "On ... wrote:"
attributions (in several languages, wrapped over lines), Outlook's rule, forwarded blocks,
``>`` quotes and the signature marker; the quoted original of a reply is kept apart."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
