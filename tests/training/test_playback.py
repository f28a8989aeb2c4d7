"""Data playback with the real embedded model: output, caching, resuming."""

import pytest

from panza_core.store import Message
from panza_tui.cli.demo import ADDRESS, mailbox
from sync.importer import import_path
from training import playback


def test_clean_keeps_one_instruction():
    assert playback.clean(
        " to Tom asking for the drill back.\nSure! Here is", "Write an email"
    ) == ("Write an email to Tom asking for the drill back.")
    assert playback.clean("", "Write an email") is None
    assert playback.clean(" :", "Write a reply to Jo") is None
    assert (
        playback.clean(" about Friday.", "Write a reply to Jo")
        == "Write a reply to Jo about Friday."
    )
    assert len(playback.clean(" word" * 100).split()) == 60


def test_primer_names_the_addressee():
    assert playback.primer(Message(text="Hi Tom,\n\nthe drill")) == "Write an email to Tom"
    assert (
        playback.primer(Message(text="Dear Prof. Aman,\n\nthanks"))
        == "Write an email to Prof. Aman"
    )
    assert playback.primer(Message(text="Thanks for the drill")) == "Write an email"


@pytest.fixture()
def demo(workspace):
    workspace.store.add_account("demo", [ADDRESS])
    import_path(workspace.store, "demo", mailbox())
    return workspace


@pytest.mark.slow
def test_playback_is_cached_and_resumes(demo):
    ws = demo
    first = playback.run(ws.store, "demo", ws.llm, ws.config.playback, limit=3)
    assert first.counts["generated"] + first.counts["fallback"] == 3
    assert first.counts["skipped"] == 62
    pairs = playback.pairs(ws.store, "demo", ws.llm, ws.config.playback)
    assert len(pairs) == 3
    assert all(i.startswith("Write an email") and len(i.split()) >= 5 for _, i in pairs)

    calls = []

    def stand_in(prompt, max_tokens, temperature, seed):
        calls.append(prompt)
        return " to someone about the plan for next week."

    # After an "interruption" at 3, the next run redoes none of them.
    second = playback.run(ws.store, "demo", ws.llm, ws.config.playback, completer=stand_in, limit=2)
    assert (second.counts["cached"], second.counts["generated"], len(calls)) == (3, 2, 2)
    playback.run(ws.store, "demo", ws.llm, ws.config.playback, completer=stand_in)
    assert len(calls) == 65 - 3

    def must_not_run(*args):
        raise AssertionError("the model ran for an email that has an instruction")

    done = playback.run(ws.store, "demo", ws.llm, ws.config.playback, completer=must_not_run)
    assert done.counts == {"cached": 65}
    # a different playback setting is a different cache key: everything is redone
    hotter = ws.config.with_(playback={"temperature": 0.9}).playback
    assert playback.pairs(ws.store, "demo", ws.llm, hotter) == []


def test_playback_completes_in_batches_and_reports_progress_in_order(demo):
    ws = demo.with_config(playback={"batch": 4})
    batches: list[int] = []
    seen: list[int] = []

    stored_before_the_call_ended: list[bool] = []

    def many(prompts, max_tokens, temperature, seed, done=None):
        batches.append(len(prompts))
        for i in range(len(prompts) - 1, -1, -1):  # in another order than given
            done(i, " to Sam about the garden.")
            stored_before_the_call_ended.append(len(playback.pairs(*pairs_of)) > 0)
        return [" to Sam about the garden." for _ in prompts]

    pairs_of = (ws.store, "demo", ws.llm, ws.config.playback)
    queued = 4 * playback.QUEUED_PER_SLOT  # prompts handed over per call
    report = playback.run(
        ws.store, "demo", ws.llm, ws.config.playback, limit=queued * 2 + 3, many=many,
        progress=lambda done, total: seen.append(done),
    )  # fmt: skip
    assert batches == [queued, queued, 3] and report.counts["generated"] == queued * 2 + 3
    assert all(stored_before_the_call_ended)
    assert seen == list(range(1, 66))  # every email once, in order, cached or not
    again = playback.run(ws.store, "demo", ws.llm, ws.config.playback, many=many, limit=5)
    assert again.counts["cached"] == queued * 2 + 3 and batches[3:] == [5]


@pytest.mark.slow
def test_batched_greedy_completions_match_one_at_a_time(demo):
    """Several emails per llama.cpp decode (``BatchedCompleter``) write what one email at
    a time writes, token for token. Where kernels for several rows round differently from
    one row on some host (llama.cpp #6583), a difference is allowed only at a near-tie:
    the one-at-a-time model's logits for its token and the batched one within 0.5 (0.25
    the largest seen on this project's 2-core Zen 3 host before contexts shared settings)."""
    import numpy as np

    from panza_core import llama, prompting
    from panza_core.llama_batch import BatchedCompleter
    from panza_core.models import chat_template, eos_text

    ws = demo
    template = chat_template(ws.llm)
    prompts = [playback.playback_prompt(template, m) for m in ws.store.messages("demo")[:6]]
    stops = [*prompting.turn_ends(template, eos_text(ws.llm)), "\n"]
    llm = llama.load(ws.llm.path, n_ctx=2048, logits_all=True)
    finished: dict[int, str] = {}
    with BatchedCompleter(llm, n_seq=4) as batched:
        # 6 prompts in 4 slots: the first two to finish hand their slots to the last two
        texts = batched.complete(prompts, 24, stops, done=finished.__setitem__)
        tokens = batched.last_tokens
        held = list(batched.prefix)
        # the few-shot prefix kept from the call before is reused, not evaluated again
        assert all(batched.complete(prompts[4:], 24, stops))
        assert batched.prefix[: len(held)] == held
        tokens += batched.last_tokens
    assert all(texts) and len(texts) == 6 and finished == dict(enumerate(texts))
    assert len(held) > 100  # the few-shot examples all playback prompts start with
    for prompt, got in zip(prompts + prompts[4:], tokens, strict=True):
        llm.reset()
        llm.eval(llama.prompt_tokens(llm, prompt))
        for token in got:
            logits = np.asarray(llm.scores[llm.n_tokens - 1])
            best = int(np.argmax(logits))
            if best != token:
                assert logits[best] - logits[token] < 0.5
                break
            llm.eval([token])
    serial = [llama.stream(llm, p, max_tokens=24, temperature=0.0, stop=stops).text
              for p in prompts]  # fmt: skip
    assert sum(a == b for a, b in zip(serial, texts, strict=True)) >= 5
