"""What one draft is asked for (``DraftRequest``) and what it produced (``Draft``).

A request is built once (``Drafter.request``: when the compose screen opens, or once per
``panza draft``) with everything the store knows about it, the conversation of a reply, its
headers and the preamble; the preparation while typing, the draft and the save all read
that one object instead of each asking the store again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from panza_core import replies
from panza_core.config import DraftingConfig
from panza_core.facts import FactCheck
from panza_core.store import Message


@dataclass(frozen=True)
class Retrieved:
    """A past email put in the prompt: store id, cosine similarity, subject, body."""

    id: int
    score: float
    subject: str
    text: str


@dataclass(frozen=True)
class DraftRequest:
    """One email to draft for ``account``.

    ``instruction``: what the email should do (may be empty for a reply). ``reply_to``: the
    stored email answered, with ``reply_all``; ``thread``: the conversation the prompt
    carries (oldest first, ``replies.Turn``s; empty for a new email); ``correspondent``:
    whose past emails retrieval puts first; ``headers``: the reply's To/Cc/Subject/
    In-Reply-To/References (None for a new email). ``exclude``: store ids never retrieved
    (the email answered, held-out mail). ``retrieved``: the past emails to use, found before
    (while typing); None retrieves them when drafting. ``preamble``: the user's preamble;
    ``settings``: sampling and context; ``seed``: this attempt's sampling seed.
    """

    account: str
    settings: DraftingConfig
    preamble: str = ""
    instruction: str = ""
    reply_to: Message | None = None
    reply_all: bool = False
    thread: tuple[replies.Turn, ...] = ()
    correspondent: str | None = None
    headers: replies.ReplyHeaders | None = None
    exclude: tuple[int, ...] = ()
    retrieved: tuple[Retrieved, ...] | None = None
    seed: int | None = None

    def typed(self, instruction: str) -> DraftRequest:
        """The same request with the instruction now ``instruction``."""
        return replace(self, instruction=instruction)

    def using(self, retrieved: list[Retrieved] | tuple[Retrieved, ...] | None) -> DraftRequest:
        """The same request with these past emails (None: retrieve when drafting)."""
        return replace(self, retrieved=None if retrieved is None else tuple(retrieved))

    def attempt(self, number: int) -> DraftRequest:
        """The same request sampled with the ``number``-th seed after the configured one (a
        regeneration), 0 being the configured seed."""
        return replace(self, seed=self.settings.seed + number)

    @property
    def turns(self) -> list[tuple[str, str]]:
        """The conversation as prompt turns, (author, text), "me" for the user's own."""
        return [turn.as_prompt for turn in self.thread]


@dataclass
class Draft:
    """A finished draft. ``timings``: retrieval_ms, ttft_ms, tokens_per_s, tokens, total_ms.
    ``headers``: for a reply, its To/Cc/Subject/In-Reply-To/References; ``thread``: the
    (author, text) turns of the conversation that was in the prompt."""

    draft: str
    retrieved: list[Retrieved] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    model: str = ""
    headers: replies.ReplyHeaders | None = None
    thread: list[tuple[str, str]] = field(default_factory=list)
    facts: FactCheck | None = None  # set by ``Drafter.candidates``
    candidate: int = 0  # which of the candidates it was, in the order they were drafted

    def fact_rank(self) -> tuple[float, int]:
        """How it sorts among candidates, best first: the most of the instruction's facts
        carried, then the fewest invented or copied."""
        if self.facts is None:
            return (0.0, 0)
        recall = 1.0 if self.facts.recall is None else self.facts.recall
        return (-recall, len(self.facts.invented) + len(self.facts.copied))

    def to_json(self) -> dict[str, Any]:
        """The ``panza draft --json`` object: draft, retrieved (id, score, subject, text),
        timings, and for a reply ``headers`` and ``thread`` (author, text)."""
        data: dict[str, Any] = {
            "draft": self.draft,
            "retrieved": [asdict(r) for r in self.retrieved],
            "timings": self.timings,
        }
        if self.facts is not None:
            data["facts"] = {
                "recall": self.facts.recall,
                **{part: sorted(str(f) for f in getattr(self.facts, part))
                   for part in ("carried", "missing", "invented", "copied")},
            }  # fmt: skip
        if self.headers is not None:
            data["headers"] = asdict(self.headers)
            data["thread"] = [{"author": a, "text": t} for a, t in self.thread]
        return data
