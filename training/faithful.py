"""Playback instructions that keep the email's facts (issue: drafts that say what was asked).

A played-back instruction is what training teaches the model to turn into the email. If it
leaves out the email's date, names or amounts, or names someone the email never mentions
(the 135M model turned an email to "Mary" about billing into "Write an email to Mum asking
for a meeting"), the model learns that drafts need not agree with their instruction. So
each instruction is checked against its email with ``panza_core.facts``:

- **kept**: it carries every key fact of the email and invents none;
- **repaired**: it invents none but misses some: they are appended ("Mention Monday, 8:15
  and $150."), in the order the email gives them;
- **rewritten**: it names facts the email does not hold (subject included): it is replaced
  by one built from the email alone (``Write an email about "<subject>". Mention ...``).

The key facts are the email's, less its signature (trailing lines of at most three
capitalised words: "Best regards,\\nDavid"). The check runs when pairs are read, so
instructions cached before it existed are checked too, and nothing is regenerated.
"""

from __future__ import annotations

import re
from collections import Counter
from enum import StrEnum

from panza_core.facts import Fact, Kind, facts
from panza_core.store import Message


def _signature_line(line: str) -> bool:
    words = line.strip().rstrip(",.!").split()
    return 1 <= len(words) <= 3 and all(w[:1].isupper() and w.isalpha() for w in words)


class Verdict(StrEnum):
    """What the check did to an instruction."""

    KEPT = "kept"
    REPAIRED = "repaired"
    REWRITTEN = "rewritten"


def key_facts(message: Message) -> list[Fact]:
    """The facts an instruction for ``message`` must carry, in the order the email first
    gives them; a date's month is not listed apart from the date."""
    lines = message.text.strip().splitlines()
    while lines and (not lines[-1].strip() or _signature_line(lines[-1])):
        lines.pop()  # the signature and sign-off ("Cheers,", "Maya")
    body = "\n".join(lines)
    found = facts(body)
    dated = {f.text for f in found if f.kind is Kind.DATE}
    wanted = [f for f in found if not (f.kind is Kind.MONTH and f.text in dated)]
    return sorted(wanted, key=lambda f: (_position(body, f), f.key))


def _position(text: str, fact: Fact) -> int:
    at = text.find(fact.text)
    return at if at >= 0 else len(text)


def _mention(wanted: list[Fact]) -> str:
    texts = list(dict.fromkeys(str(f) for f in wanted))
    if len(texts) > 1:
        return f"Mention {', '.join(texts[:-1])} and {texts[-1]}."
    return f"Mention {texts[0]}."


def faithful(message: Message, instruction: str) -> tuple[str, Verdict]:
    """``instruction`` checked against ``message`` (see the module docstring): the
    instruction to train on, and what was done to it."""
    wanted = key_facts(message)
    allowed = {(f.kind, f.key) for f in facts(message.text) | facts(message.subject)}
    given = facts(instruction)
    if any((f.kind, f.key) not in allowed for f in given):
        kind = "a reply" if message.subject.lower().startswith("re:") else "an email"
        subject = re.sub(r"^\s*((re|fwd?|aw)\s*:\s*)+", "", message.subject, flags=re.I)
        subject = subject.strip() or "no subject"
        rebuilt = f'Write {kind} about "{subject}".'
        return (f"{rebuilt} {_mention(wanted)}" if wanted else rebuilt), Verdict.REWRITTEN
    have = {(f.kind, f.key) for f in given}
    missing = [f for f in wanted if (f.kind, f.key) not in have]
    if not missing:
        return instruction, Verdict.KEPT
    said = instruction.rstrip()
    said += "" if said.endswith((".", "!", "?")) else "."
    return f"{said} {_mention(missing)}", Verdict.REPAIRED


def checked(pairs: list[tuple[Message, str]]) -> tuple[list[tuple[Message, str]], Counter]:
    """Every pair with its instruction checked (``faithful``), and how many of each
    ``Verdict``."""
    out, verdicts = [], Counter[str]()
    for message, instruction in pairs:
        fixed, verdict = faithful(message, instruction)
        out.append((message, fixed))
        verdicts[verdict.value] += 1
    return out, verdicts
