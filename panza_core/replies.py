"""Replies: the headers of an answer, and the conversation a reply's prompt carries.

Used alike by drafting (answering a received email) and by training (a sent reply learned
with the email it answered), so a reply is prompted the same way in both.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from typing import Protocol

from panza_core.store import Message

# The parent is always in the prompt (cut to this); earlier messages fill what is left of the
# thread budget, newest first. About 4 characters per token in English mail, so the whole
# thread stays near 600 tokens beside the 3 retrieved emails and the instruction.
MAX_PARENT_CHARS = 1500
MAX_THREAD_CHARS = 2400
QUOTED_AUTHOR = "the sender"  # who wrote an original known only from its quote

_REPLY_PREFIX = re.compile(r"^\s*(re|aw|sv|antw)\s*(\[\d+\])?\s*:", re.I)


@dataclass(frozen=True)
class Turn:
    """One earlier email of a conversation as the prompt shows it: who wrote it, and its text
    (the writer's own words). ``mine``: the user wrote it."""

    author: str
    text: str
    mine: bool = False

    @property
    def as_prompt(self) -> tuple[str, str]:
        """(who, text) for ``prompting.user_message``: "me" for the user's own emails."""
        return ("me" if self.mine else self.author, self.text)


@dataclass(frozen=True)
class ReplyHeaders:
    """The headers of a reply (RFC 5322 section 3.6.4): addresses as header text."""

    to: str
    cc: str
    subject: str
    in_reply_to: str | None
    references: str | None


class MessageLookup(Protocol):
    """What reply context needs from the store."""

    def by_message_id(self, account: str, message_id: str) -> Message | None: ...

    def thread(self, account: str, thread_id: str) -> list[Message]: ...


def reply_subject(subject: str) -> str:
    """``Re: subject``, without stacking prefixes ("Re: Re:", "AW:", "Re[2]:")."""
    bare = subject.strip()
    while _REPLY_PREFIX.match(bare):
        bare = _REPLY_PREFIX.sub("", bare, count=1).strip()
    return f"Re: {bare}" if bare else "Re:"


def _addresses(value: str) -> list[tuple[str, str]]:
    return [(name, addr) for name, addr in email.utils.getaddresses([value]) if "@" in addr]


def reply_headers(parent: Message, own: list[str], reply_all: bool = False) -> ReplyHeaders:
    """Headers answering ``parent``. To is its sender (its recipients when the user sent it);
    reply-all adds its other recipients to Cc, never the user's own ``own`` addresses
    (lower-case). References is the parent's References plus its Message-ID."""
    mine = {a.lower() for a in own}
    if parent.received:
        to = _addresses(parent.from_addr)
        others = _addresses(parent.to_addrs) + _addresses(parent.cc_addrs)
    else:
        to = _addresses(parent.to_addrs)
        others = _addresses(parent.cc_addrs)
    taken = {addr.lower() for _, addr in to} | mine
    cc: list[tuple[str, str]] = []
    if reply_all:
        for name, addr in others:
            if addr.lower() not in taken:
                taken.add(addr.lower())
                cc.append((name, addr))
    refs = " ".join(filter(None, [parent.refs or "", parent.message_id or ""])).strip()
    return ReplyHeaders(
        to=", ".join(email.utils.formataddr(a) for a in to),
        cc=", ".join(email.utils.formataddr(a) for a in cc),
        subject=reply_subject(parent.subject),
        in_reply_to=parent.message_id,
        references=refs or None,
    )


def author(message: Message) -> str:
    """The display name of a message's sender, else its address."""
    found = _addresses(message.from_addr)
    if not found:
        return message.from_addr or "someone"
    name, addr = found[0]
    return name or addr


def first_name(author_name: str) -> str:
    """How a greeting names someone: "Jane" for "Jane Doe", "Doe, Jane", "Jane Doe via
    List", "jane.doe@x.org"; "" when there is nothing name-like."""
    name = re.sub(r"\s+via\s+.*$", "", author_name.strip().strip('"'))
    if "@" in name:
        name = name.split("@")[0].replace(".", " ").replace("_", " ")
    elif "," in name:
        name = name.split(",", 1)[1]
    words = [w for w in name.split() if w[:1].isalpha()]
    return words[0].capitalize() if words else ""


def thread_before(store: MessageLookup, account: str, parent: Message) -> list[Turn]:
    """The conversation up to and including ``parent``, oldest first, within the budget:
    ``parent`` (cut to ``MAX_PARENT_CHARS``) always, then earlier messages newest-first
    while they fit in ``MAX_THREAD_CHARS``."""
    earlier: list[Message] = []
    if parent.thread_id:
        thread = store.thread(account, parent.thread_id)
        ids = [m.id for m in thread]
        if parent.id in ids:
            earlier = thread[: ids.index(parent.id)]
    turns = [Turn(author(parent), parent.text[:MAX_PARENT_CHARS], not parent.received)]
    room = MAX_THREAD_CHARS - len(turns[0].text)
    for message in reversed(earlier):
        if len(message.text) > room:
            break
        turns.insert(0, Turn(author(message), message.text, not message.received))
        room -= len(message.text)
    return turns


def context_of(store: MessageLookup, account: str, message: Message) -> list[Turn]:
    """What a sent ``message`` answered, as prompt turns: the stored parent and the thread
    before it, else the original quoted inside the message, else [] (a new email)."""
    if message.in_reply_to:
        parent = store.by_message_id(account, message.in_reply_to)
        if parent is not None and parent.id != message.id:
            return thread_before(store, account, parent)
    if message.quoted:
        return [Turn(QUOTED_AUTHOR, message.quoted[:MAX_PARENT_CHARS])]
    return []


def first_address(value: str) -> str | None:
    """The first address in a header value, lower-case, or None."""
    found = _addresses(value)
    return found[0][1].lower() if found else None


def correspondent(message: Message) -> str | None:
    """The address a reply to ``message`` goes to: its sender, or (the user's own email)
    its first recipient."""
    return first_address(message.from_addr if message.received else message.to_addrs)


def query_text(instruction: str, thread: list[tuple[str, str]]) -> str:
    """What retrieval embeds: the instruction, and for a reply the start of the email it
    answers (a reply with no instruction is found by what it answers)."""
    if not thread:
        return instruction
    return f"{instruction}\n\n{thread[-1][1][:500]}".strip()


_NAME = re.compile(r"\b[A-Z][\w'-]+\b")


def address_book(messages: list[Message]) -> list[tuple[str, str, int]]:
    """(display name, address, emails) of everyone the user wrote to (To/Cc of sent mail)
    or heard from (From of received mail), most frequent first."""
    counts: dict[str, int] = {}
    names: dict[str, str] = {}
    for m in messages:
        header = m.from_addr if m.received else f"{m.to_addrs}, {m.cc_addrs}"
        for name, addr in _addresses(header):
            addr = addr.lower()
            if name and not names.get(addr):
                names[addr] = name.strip().strip('"')
            counts[addr] = counts.get(addr, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(names.get(addr, ""), addr, n) for addr, n in ranked]


def suggest_to(book: list[tuple[str, str, int]], instruction: str, own: list[str]) -> list[str]:
    """Recipients the instruction names ("Tell Priya the drains are done"): past
    correspondents whose first name (or address) matches a capitalised word of it, most
    frequent first, as header text ("Priya Raman <priya@x.org>"). Never the user's own
    ``own`` addresses."""
    words = {w.lower() for w in _NAME.findall(instruction)}
    mine = {a.lower() for a in own}
    found = []
    for name, addr, _ in book:
        first = name.replace(",", " ").split()[0].lower() if name.split() else ""
        local = re.split(r"[._+-]", addr.split("@")[0])[0]
        if addr not in mine and (first in words or local in words):
            found.append(email.utils.formataddr((name, addr)) if name else addr)
    return found
