"""Fact-guided decoding (``panza_core.guidance``) on the embedded model's real vocabulary:
which logits the guide moves, by how much, and what that does to greedy drafts."""

from __future__ import annotations

import numpy as np
import pytest

from panza_core import llama
from panza_core.facts import Fact, Kind, facts
from panza_core.guidance import END_PENALTY, FOLLOW, FactGuide, Guidance, Vocabulary
from panza_core.workspace import Workspace


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    ws = Workspace()
    llm = llama.load(ws.llm.path, n_ctx=256)
    return Vocabulary(llm, ws.stops)


def ids(vocabulary: Vocabulary, text: str) -> list[int]:
    return vocabulary.llm.tokenize(text.encode(), add_bos=False, special=False)


def logits_after(guide: FactGuide, vocabulary: Vocabulary, written: str) -> np.ndarray:
    """The guide's logits after ``written`` (from all-zero logits), prompt = 3 tokens."""
    context = np.array([1, 2, 3, *ids(vocabulary, written)], dtype=np.intc)
    return guide(context, np.zeros(vocabulary.llm.n_vocab(), dtype=np.single))


def test_vocabulary_finds_digits_ends_and_calendar_words(vocabulary):
    llm = vocabulary.llm
    digits = set(vocabulary.digits.tolist())
    assert ids(vocabulary, "2026")[0] in digits and ids(vocabulary, " the")[0] not in digits
    assert llm.token_eos() in vocabulary.ends
    assert "may" not in vocabulary.calendar and "monday" in vocabulary.calendar
    assert tuple(ids(vocabulary, " March")) in vocabulary.calendar["march"]


def test_missing_facts_are_boosted_then_followed_and_end_of_text_held(vocabulary):
    wanted = facts("Feed my cat Spike the last week in March")
    guide = FactGuide(vocabulary, 3, wanted, wanted, (), Guidance(boost=4.0, penalty=0.0))
    spike = ids(vocabulary, " Spike")
    scores = logits_after(guide, vocabulary, "Hi all,")
    assert scores[spike[0]] == pytest.approx(4.0)
    assert scores[ids(vocabulary, " March")[0]] == pytest.approx(4.0)
    assert scores[vocabulary.ends[0]] == pytest.approx(-END_PENALTY)
    assert scores[ids(vocabulary, " the")[0]] == 0
    assert len(spike) > 1  # " Sp" "ike" in SmolLM2: begun, the next token is followed
    begun = logits_after(guide, vocabulary, "Hi all, please feed" + vocabulary.text(spike[:1]))
    assert begun[spike[1]] == pytest.approx(FOLLOW)
    done = logits_after(guide, vocabulary, "Please feed Spike in March.")
    assert not done.any()  # every fact written: nothing is moved, end of text is free


def test_unasked_digits_months_and_copied_names_are_held_back(vocabulary):
    instruction = "Tell Priya the rent is $1,200 from Monday"
    allowed = facts(instruction)
    copied = {Fact(Kind.NAME, "ella", "Ella"), Fact(Kind.NAME, "priya", "Priya")}
    guide = FactGuide(vocabulary, 3, allowed, allowed, copied, Guidance(boost=0.0, penalty=10.0))
    scores = logits_after(guide, vocabulary, "Hi Priya,")
    # SmolLM2 spells numbers digit by digit: the instruction's digits stay free, others not
    assert scores[ids(vocabulary, " 7")[-1]] == pytest.approx(-10.0)
    assert all(scores[t] == 0 for t in ids(vocabulary, " $1,200"))
    assert scores[ids(vocabulary, " Friday")[0]] == pytest.approx(-10.0)
    assert scores[ids(vocabulary, " Monday")[0]] == 0  # asked for
    ella = ids(vocabulary, " Ella")
    assert len(ella) == 1 and scores[ella[0]] == pytest.approx(-10.0)
    assert scores[ids(vocabulary, " Priya")[0]] == 0  # in the instruction: not copied
    assert scores[ids(vocabulary, " the")[0]] == 0


def test_guidance_off_moves_nothing(vocabulary):
    wanted = facts("Feed Spike on March 3")
    guide = FactGuide(vocabulary, 3, wanted, wanted, (), Guidance(boost=0.0, penalty=0.0))
    assert not Guidance(0.0, 0.0).active
    assert not logits_after(guide, vocabulary, "Hi,").any()


@pytest.mark.slow
def test_a_strongly_guided_draft_carries_every_fact_and_no_number(workspace):
    from panza_core.drafting import Drafter
    from panza_tui.cli.demo import ADDRESS, PREAMBLE, mailbox
    from sync.importer import import_path

    workspace.store.add_account("demo", [ADDRESS], PREAMBLE)
    import_path(workspace.store, "demo", mailbox())
    strong = {"temperature": 0.0, "max_tokens": 64, "fact_boost": 30.0, "unasked_penalty": 100.0}
    drafter = Drafter(workspace.with_config(drafting=strong), "demo")
    instruction = "Ask the neighbours to feed my cat Spike the last week in March"
    draft = drafter.candidates(drafter.request(instruction), 1)[0]
    assert draft.facts is not None and draft.facts.recall == 1.0, draft.draft
    assert not any(ch.isdigit() for ch in draft.draft), draft.draft
