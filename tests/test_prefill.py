"""The first token while you type: ``Drafter.prepare`` evaluates the prompt before the
instruction, so enter evaluates only the instruction's tokens, and regenerate reuses the
whole prompt; under greedy decoding every path drafts what the uncached prompt drafts."""

from __future__ import annotations

import pytest

from panza_core import llama
from panza_core.drafting import Drafter
from panza_tui.cli.demo import ADDRESS, PREAMBLE, mailbox
from sync.importer import import_path

pytestmark = pytest.mark.slow

INSTRUCTIONS = [
    "Tell Priya I can't make the Thursday meeting and ask to move it to Friday",
    "Thank Tom for lending me the drill and say I will return it on Sunday",
]


@pytest.fixture()
def drafter(workspace):
    workspace.store.add_account("demo", [ADDRESS], PREAMBLE)
    import_path(workspace.store, "demo", mailbox())
    ws = workspace.with_config(drafting={"temperature": 0.0, "max_tokens": 32})
    drafter = Drafter(ws, "demo")
    drafter.load()
    return drafter


def evaluated(drafter: Drafter) -> list[int]:
    """Record the size of every batch llama.cpp evaluates from now on."""
    llm = drafter.load().llm
    sizes: list[int] = []
    original = llm.eval

    def spy(tokens):  # type: ignore[no-untyped-def]
        sizes.append(len(tokens))
        return original(tokens)

    llm.eval = spy
    return sizes


def test_prompt_tokens_are_the_tokens_a_completion_evaluates(drafter):
    llm = drafter.load().llm
    request = drafter.request(INSTRUCTIONS[0])
    prompt = drafter.prompt(request, drafter.retrieve(request))
    drafter.forget_prompt()
    llama.stream(llm, prompt, max_tokens=1, temperature=0.0)
    tokens = llama.prompt_tokens(llm, prompt)
    assert list(llm._input_ids[: len(tokens)]) == tokens
    empty = drafter.request()
    prefix = llama.prompt_tokens(llm, drafter.prompt_prefix(empty, drafter.retrieve(request)))
    assert 0 < len(prefix) < len(tokens) and tokens[: len(prefix)] == prefix


def test_prepared_and_regenerated_drafts_match_the_uncached_draft(drafter):
    llm = drafter.load().llm
    empty = drafter.request()
    for instruction in INSTRUCTIONS:
        request = drafter.request(instruction)
        drafter.forget_prompt()
        sizes = evaluated(drafter)
        cold = drafter.draft(request)
        full = len(llama.prompt_tokens(llm, drafter.prompt(request, cold.retrieved)))
        assert sizes[0] == full > 200

        # the prompt before the instruction, evaluated: enter leaves the instruction's tokens
        drafter.forget_prompt()
        drafter.prepare(empty)
        prefix = llama.prompt_tokens(llm, drafter.prompt_prefix(empty, drafter.retrieve(empty)))
        assert list(llm._input_ids) == prefix
        llama.prefill(llm, drafter.prompt_prefix(empty, cold.retrieved))
        before = llm.n_tokens
        sizes.clear()
        warm = drafter.draft(request)
        assert sizes[0] == full - before < 40  # the instruction and the turn's end only
        assert warm.draft == cold.draft

        # typing paused on the whole instruction, then enter: the turn's end is left
        drafter.forget_prompt()
        drafter.prepare(request)
        typed = llama.prompt_tokens(llm, drafter.prompt_prefix(request, cold.retrieved))
        assert list(llm._input_ids) == typed
        sizes.clear()
        assert drafter.draft(request).draft == cold.draft
        assert sizes[0] == max(llama.FRESH_TOKENS, full - len(typed)) < 10

        # regenerate: the prompt is cached; only its last FRESH_TOKENS are evaluated again
        sizes.clear()
        again = drafter.draft(request)
        assert sizes[0] == llama.FRESH_TOKENS and again.draft == cold.draft

        # typing paused halfway: retrieval may have found other emails; still the same draft
        drafter.forget_prompt()
        drafter.prepare(request.typed(instruction[: len(instruction) // 2]))
        assert drafter.draft(request).draft == cold.draft


def test_a_preparation_overtaken_by_a_draft_leaves_the_cache_alone(drafter):
    llm = drafter.load().llm
    drafter.draft(drafter.request(INSTRUCTIONS[0]))
    cached = list(llm._input_ids)
    late = drafter.request(INSTRUCTIONS[1])
    assert drafter.prepare(late, still_wanted=lambda: False) == (None, False)
    assert list(llm._input_ids) == cached


def test_the_subject_line_puts_the_drafts_prompt_back(drafter):
    llm = drafter.load().llm
    request = drafter.request(INSTRUCTIONS[0])
    draft = drafter.draft(request)
    drafter.subject(draft.draft, INSTRUCTIONS[0])
    prompt = llama.prompt_tokens(llm, drafter.prompt(request, draft.retrieved))
    assert list(llm._input_ids) == prompt


def test_the_preparer_follows_typing_and_stands_down_on_enter(drafter):
    from panza_core.drafting import Preparer, complete_words

    assert complete_words("Tell Priya I can") == "Tell Priya I"
    assert complete_words("Tell") == "Tell" and complete_words("Tell ") == "Tell"
    llm = drafter.load().llm
    preparer = Preparer(drafter, drafter.request())
    instruction = INSTRUCTIONS[0]
    for end in range(1, len(instruction) + 1):  # keystrokes faster than it prepares
        preparer.typed(instruction[:end])
    assert preparer.idle(timeout=120)
    assert 1 <= preparer.prepared < len(instruction)  # coalesced
    # past emails retrieved for words typed, their prompt and the whole instruction cached
    retrieved = preparer.retrieval_for(instruction)
    assert retrieved is not None and preparer.retrieval_for("Something else") is None
    request = drafter.request(instruction, retrieved=retrieved)
    prefix = drafter.prompt_prefix(request, retrieved)
    assert list(llm._input_ids) == llama.prompt_tokens(llm, prefix)
    sizes = evaluated(drafter)
    draft = drafter.draft(request)
    assert sizes[0] < 10  # enter: the turn's end only
    drafter.forget_prompt()
    assert drafter.draft(request).draft == draft.draft
    cached = list(llm._input_ids)
    with drafter.load().lock:  # as while a draft holds the model
        preparer.typed(instruction + " and more")
        preparer.stop()  # enter: a preparation that has not got the model stands down
    assert preparer.idle(timeout=120) and list(llm._input_ids) == cached
    preparer.close()
