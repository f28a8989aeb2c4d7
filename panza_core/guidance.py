"""Fact-guided decoding: the instruction's facts pulled into a draft, unasked ones held back.

The embedded 135M model writes in its user's style but drops what was asked ("feed my cat
Spike the last week in March" became an email about bulbs) and invents dates and numbers.
A ``FactGuide`` is a llama.cpp logits processor, a soft form of lexically constrained
decoding (NeuroLogic decoding, Lu et al., NAACL 2021, arXiv 2010.12884: steer sampling
toward the constraints rather than search for them). At every step it

- adds ``boost`` to the logit of the first token of each instruction fact the draft has
  not written yet, and ``FOLLOW`` to the next token of one it has begun ("Sp" -> "ike");
- subtracts ``END_PENALTY`` from the end-of-text tokens while any is missing;
- subtracts ``penalty`` from tokens that would start a fact the draft may not hold: any
  token with a digit, and the names of months and weekdays, unless a fact of the
  instruction, the conversation answered or the user's own preamble holds them; and names
  that only the retrieved past emails hold (copied facts: the bulbs of another email).

Soft, not hard: a fact the model cannot place gets no forced slot, and a number the email
needs can still win. Measured by ``bench/fidelity.py`` (fact recall, invented and copied
facts, ROUGE-L) and on the demo account's "Spike" request (README, "Drafts that say what
you asked"). A fact counts as written once its text appears in the draft, ignoring case.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from panza_core.facts import MONTHS, WEEKDAYS, Fact, Kind

FOLLOW = 8.0  # logit added to a begun fact's next token: a fact once started is finished
END_PENALTY = 3.0  # logit taken from end of text while instruction facts are missing
_HELD_BACK = (Kind.NUMBER, Kind.DATE, Kind.TIME, Kind.EMAIL, Kind.URL, Kind.MONTH,
              Kind.WEEKDAY)  # fmt: skip


class Vocabulary:
    """One model's token ids the guide needs, found once per loaded model (a pass over the
    vocabulary: about 0.2 s for SmolLM2's 49,152 tokens).

    ``llm`` is a ``llama_cpp.Llama``; ``ends`` are the texts that end a draft (the chat
    template's end-of-turn), added to the model's end-of-text token where each is one token.
    """

    def __init__(self, llm: Any, ends: Iterable[str] = ()) -> None:
        import numpy as np

        self.llm = llm
        pieces = [llm.detokenize([t]) for t in range(llm.n_vocab())]
        self.digits = np.array(
            [t for t, p in enumerate(pieces) if any(48 <= b <= 57 for b in p)], dtype=np.intc
        )
        end = {llm.token_eos()}
        for text in ends:
            ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            if len(ids) == 1:
                end.add(ids[0])
        self.ends = sorted(t for t in end if t >= 0)
        self.calendar = {
            word: self.spellings(word.capitalize()) for word in MONTHS + WEEKDAYS if word != "may"
        }  # "May" is also the verb that starts a question

    def spellings(self, text: str) -> set[tuple[int, ...]]:
        """Token ids of ``text`` mid-sentence (after a space) and at the start of a line."""
        return {
            tuple(self.llm.tokenize(t.encode("utf-8"), add_bos=False, special=False))
            for t in (" " + text, text)
        } - {()}

    def text(self, tokens: Sequence[int]) -> str:
        """The text of generated ``tokens`` (bytes cut mid-character dropped)."""
        return self.llm.detokenize(list(tokens)).decode("utf-8", "ignore")


@dataclass(frozen=True)
class Guidance:
    """How hard the guide pushes (logits; 0 turns that side off): ``boost`` for missing
    instruction facts, ``penalty`` for facts from nowhere the draft may take them."""

    boost: float = 4.0
    penalty: float = 10.0

    @property
    def active(self) -> bool:
        return self.boost > 0 or self.penalty > 0


class FactGuide:
    """The logits processor for one draft (``llama_cpp`` calls it with the context's token
    ids and the next token's logits, shape ``(n_vocab,)``, once per generated token).

    ``prompt_tokens``: how many of the ids are the prompt. ``wanted``: the instruction's
    facts. ``allowed``: every fact the draft may hold without inventing it (the
    instruction's, the conversation's, the user's preamble's). ``copied``: facts only the
    retrieved emails hold.
    """

    def __init__(
        self, vocabulary: Vocabulary, prompt_tokens: int, wanted: Iterable[Fact],
        allowed: Iterable[Fact], copied: Iterable[Fact], guidance: Guidance,
    ) -> None:  # fmt: skip
        import numpy as np

        self.vocabulary = vocabulary
        self.start = prompt_tokens
        self.guidance = guidance
        self.wanted = [
            (fact.text.lower(), vocabulary.spellings(fact.text))
            for fact in set(wanted)
            if fact.text
        ]
        allowed = set(allowed)
        free: set[int] = set()  # digit tokens an allowed fact is spelt with
        for fact in allowed:
            if fact.kind in _HELD_BACK and fact.text:
                free.update(t for s in vocabulary.spellings(fact.text) for t in s)
        keys = {f.key for f in allowed if f.kind in (Kind.MONTH, Kind.WEEKDAY)}
        held: set[int] = {int(t) for t in vocabulary.digits if int(t) not in free}
        for word, spellings in vocabulary.calendar.items():
            if word not in keys:
                held.update(s[0] for s in spellings)
        names = {f.key for f in allowed if f.kind is Kind.NAME}
        for fact in copied:
            if fact.kind is Kind.NAME and fact.key not in names and fact.text:
                # a one-token name only: the first token of a longer one starts other words
                held.update(s[0] for s in vocabulary.spellings(fact.text) if len(s) == 1)
        self.held = np.array(sorted(held), dtype=np.intc)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        generated = [int(t) for t in input_ids[self.start :]]
        written = self.vocabulary.text(generated).lower()
        boost = self.guidance.boost
        missing = False
        for text, spellings in self.wanted:
            if text in written:
                continue
            missing = True
            if boost <= 0:
                continue
            begun = False
            for spelling in spellings:
                for n in range(min(len(spelling) - 1, len(generated)), 0, -1):
                    if tuple(generated[-n:]) == spelling[:n]:
                        scores[spelling[n]] += FOLLOW
                        begun = True
                        break
            if not begun:
                for spelling in spellings:
                    scores[spelling[0]] += boost
        if missing and boost > 0:
            scores[self.vocabulary.ends] -= END_PENALTY
        if self.guidance.penalty > 0 and len(self.held):
            scores[self.held] -= self.guidance.penalty
        return scores
