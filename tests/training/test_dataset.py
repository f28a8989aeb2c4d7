"""Split, RAFT selection and encoding, on the real embedded tokenizer and retrieval."""

import hashlib

import pytest

from panza_core import prompting
from panza_core.store import Message
from panza_tui.cli.demo import ADDRESS, mailbox
from sync.importer import import_path
from training import dataset, examples, playback


def _hashes(n, start=0):
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(start, start + n)]


def test_split_is_seeded_stable_and_near_the_fraction():
    hashes = _hashes(2000)
    test = [h for h in hashes if dataset.is_test(h, 42, 0.2)]
    assert 0.17 < len(test) / len(hashes) < 0.23
    assert test == [h for h in hashes if dataset.is_test(h, 42, 0.2)]  # same seed, same split
    assert test != [h for h in hashes if dataset.is_test(h, 7, 0.2)]
    rag = [h for h in hashes if dataset.uses_rag(h, 42, 0.5)]
    assert 0.45 < len(rag) / len(hashes) < 0.55


@pytest.mark.slow
def test_encode_masks_the_prompt_and_drops_retrieved_emails_to_fit(workspace):
    from training import base_model

    tokenizer = base_model.load_tokenizer(workspace.llm)
    message = Message(text="Hi Tom,\n\nThanks for the drill!\n\nCheers,\nMaya")
    long_email = "word " * 400

    def encode(max_length, retrieved=()):
        return dataset.encode(tokenizer, workspace.chat_template, "sys", "", message,
                              "Thank Tom", max_length, retrieved)  # fmt: skip

    full = encode(2048, [long_email, long_email])
    tight = encode(300, [long_email, long_email])
    tighter = encode(120, [long_email, long_email])
    bare = encode(120)
    assert len(full.input_ids) > 300 >= len(tight.input_ids)
    text = tokenizer.decode(tight.input_ids)
    assert "EMAIL 1:" in text and "EMAIL 2:" not in text  # one past email had to go
    assert tighter.input_ids == bare.input_ids  # and here both
    n_prompt = tight.labels.count(dataset.IGNORE)
    assert tight.labels[n_prompt:] == tight.input_ids[n_prompt:]
    assert tokenizer.decode(tight.input_ids[n_prompt:-1]) == message.text
    assert (
        dataset.encode(tokenizer, workspace.chat_template, "sys " * 400, "", message, "x", 300)
        is None
    )


def test_raft_prompts_never_contain_the_target_email(workspace):
    ws = workspace
    ws.store.add_account("demo", [ADDRESS])
    import_path(ws.store, "demo", mailbox())
    playback.run(
        ws.store,
        "demo",
        ws.llm,
        ws.config.playback,
        completer=lambda *a: " to someone about the garden plans.",
    )
    pairs = playback.pairs(ws.store, "demo", ws.llm, ws.config.playback)
    found = examples.retrieved_for(ws, "demo", pairs)
    assert 0.3 * len(pairs) < len(found) < 0.7 * len(pairs)
    by_hash = {m.content_hash: m for m, _ in pairs}
    for content_hash, texts in found.items():
        assert by_hash[content_hash].text not in texts
        assert len(texts) <= ws.config.retrieval.top_k
    no_rag = ws.with_config(training={"rag_probability": 0.0})
    assert examples.retrieved_for(no_rag, "demo", pairs) == {}


def test_clip_cuts_long_past_emails_at_a_word():
    assert prompting.clip("short") == "short"
    clipped = prompting.clip("abcd " * 500, 50)
    assert len(clipped) <= 50 and clipped.endswith("abcd")
