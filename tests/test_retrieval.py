"""Retrieval on the real embedded MiniLM model and a real usearch index."""

import pytest

from panza_core.store import Message


@pytest.fixture()
def filled(workspace):
    ws = workspace
    ws.store.add_account("me")
    texts = {
        "Plants": "Could you water the plants on the balcony while we are away in August?",
        "Invoice": "Please find attached the invoice for the design stage, due in thirty days.",
        "Drill": "Do you still have my cordless drill? I need it for the shelves.",
        "Party": "Shall we throw Mum a surprise party for her seventieth birthday?",
    }
    ids = {s: ws.store.add_message("me", Message(text=t, subject=s)) for s, t in texts.items()}
    return ws, ids


def test_nearest_email_first_and_threshold_and_exclude(filled):
    ws, ids = filled
    assert ws.update_index("me") == 4
    assert ws.update_index("me") == 0  # incremental: nothing new to embed
    vector = ws.embedder.encode(["ask the neighbour to water my plants"])[0]
    hits = ws.index("me").search(vector, k=2)
    assert hits[0].id == ids["Plants"] and hits[0].score > hits[1].score
    assert all(-1.0 <= h.score <= 1.0 for h in hits)
    hits = ws.index("me").search(vector, k=2, exclude=[ids["Plants"]])
    assert ids["Plants"] not in [h.id for h in hits] and len(hits) == 2


def test_index_persists_and_a_corrupt_file_is_rebuilt(filled):
    from panza_core import locations
    from panza_core.retrieval import EmailIndex

    ws, ids = filled
    ws.update_index("me")
    path = locations.index_file("me")
    assert len(EmailIndex(path, ws.embedder.dim)) == 4
    path.write_bytes(b"garbage" * 10)
    rebuilt = EmailIndex(path, ws.embedder.dim)
    assert len(rebuilt) == 0  # a cache of the store: starts empty, then refills
    ws._indexes.clear()
    assert ws.update_index("me") == 4


def test_embeddings_are_unit_vectors(workspace):
    import numpy as np

    vectors = workspace.embedder.encode(["one", "two words"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # A query takes a shorter path through the same model: the same vector, to float32
    # rounding of sums in another order (~1e-7 per component; 1e-5 leaves room for others).
    long = "Thanks for the slides. " * 200  # cut to the model's 256 tokens, as in encode
    for text in ("two words", long):
        query = workspace.embedder.encode_query(text)
        assert query.shape == (384,) and query.dtype == np.float32
        assert np.allclose(query, workspace.embedder.encode([text])[0], atol=1e-5)


def test_checking_for_new_mail_does_not_load_the_model(filled):
    from panza_core.workspace import Workspace

    ws, _ = filled
    ws.update_index("me")
    fresh = Workspace(store=ws.store)
    assert fresh.update_index("me") == 0
    assert fresh.embedder._model is None  # the index opened from its file alone
    assert len(fresh.index("me")) == 4


def test_llama_cpp_loads_a_model_after_a_retrieval_index_was_opened(tmp_path):
    """usearch's extension, loaded first, used to break llama.cpp's tokenizer (std::bad_cast);
    a fresh process, because the order of loading is the whole point."""
    import subprocess
    import sys

    code = (
        "from pathlib import Path; from panza_core.retrieval import EmailIndex; "
        f"EmailIndex(Path({str(tmp_path / 'i.usearch')!r}), 4); "
        "from panza_core import llama, models; "
        "llama.load(models.resolve_llm('embedded').path, n_ctx=128); print('loaded')"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and "loaded" in run.stdout, run.stderr[-2000:]


def test_emails_to_the_person_answered_come_first_and_received_mail_is_never_indexed(workspace):
    from panza_core.retrieval import search_emails

    ws = workspace
    ws.store.add_account("me", ["me@x.org"])
    plants = "Could you water the plants on the balcony while we are away in August?"
    near = ws.store.add_message("me", Message(plants, "Plants", to_addrs="ann@x.org"))
    far = ws.store.add_message(
        "me", Message("Please keep an eye on the garden for us in August.", "Garden",
                      to_addrs="Tom <TOM@x.org>")
    )  # fmt: skip
    ws.store.add_message("me", Message(plants, "Plants?", received=True, from_addr="tom@x.org"))
    assert ws.update_index("me") == 2  # the received copy is not the user's style
    vector = ws.embedder.encode(["water my plants in August"])[0]
    index = ws.index("me")
    plain = search_emails(ws.store, index, vector, 1, -1.0)
    assert [m.id for _, m in plain] == [near]
    to_tom = search_emails(ws.store, index, vector, 1, -1.0, correspondent="tom@x.org")
    assert [m.id for _, m in to_tom] == [far]


def test_the_index_reconciles_with_the_store_on_update(filled):
    """The index drifted from the store (a kill -9 between a store commit and the index
    save, a CLI sync beside the TUI): vectors of purged rows, a vector whose row now holds
    other text, keys without a proven hash. One update makes index ids == store ids, with
    every vector of its row's text; temporary files of dead processes are removed."""
    from panza_core import locations

    ws, ids = filled
    ws.update_index("me")
    index = ws.index("me")
    ghost = max(ids.values()) + 50  # a row that no longer exists
    index.add([ghost], ws.embedder.encode(["ask the neighbour to water my plants"]), ["x"])
    index.hashes[ids["Drill"]] = "0" * 64  # a vector not proven to be this row's text
    index.save()
    path = locations.index_file("me")
    orphan = path.with_name(f"{path.name}.999999999.dead.tmp")  # a killed process's
    orphan.write_bytes(b"half")
    ws.store.mark_deleted([ids["Party"]])  # a tombstone stays indexed: still their writing
    ws._indexes.clear()

    assert ws.update_index("me") == 1  # the Drill email embedded again, nothing else
    index = ws.index("me")
    assert sorted(index.keys()) == sorted(ids.values())
    stored = {m.id: m.content_hash for m in ws.store.messages("me", deleted=True)}
    assert index.hashes == stored
    vector = ws.embedder.encode(["ask the neighbour to water my plants"])[0]
    assert ghost not in [h.id for h in index.search(vector, k=4)]
    assert not list(path.parent.glob("*.tmp"))

    ws.store.purge_deleted("me")
    assert ws.update_index("me") == 0
    assert sorted(ws.index("me").keys()) == sorted(v for k, v in ids.items() if k != "Party")
    hashes = path.with_name(path.name + ".hashes.json")
    hashes.unlink()  # an index from before the hashes were kept: all re-embedded once
    ws._indexes.clear()
    assert ws.update_index("me") == 3
    assert ws.index("me").search(vector, k=1)[0].id == ids["Plants"]
    assert len(ws.index("me").hashes) == 3


def test_indexing_reads_the_store_in_batches_and_a_killed_run_keeps_its_progress(
    workspace, monkeypatch
):
    from panza_core import retrieval
    from panza_core.retrieval import EmailIndex
    from panza_tui.cli.demo import ADDRESS, mailbox
    from sync.importer import import_path

    ws = workspace
    ws.store.add_account("demo", [ADDRESS])
    import_path(ws.store, "demo", mailbox())
    monkeypatch.setattr(retrieval, "READ_BATCH", 16)
    monkeypatch.setattr(retrieval, "EMBED_BATCH", 8)
    monkeypatch.setattr(retrieval, "SAVE_EVERY", 16)
    read: list[int] = []
    original = ws.store.messages_by_id
    monkeypatch.setattr(
        ws.store, "messages_by_id", lambda ids: read.append(len(ids)) or original(ids)
    )
    encode = ws.embedder.encode
    calls = []

    def dies_on_the_fifth_batch(texts, *args, **kwargs):
        calls.append(sorted(len(t) for t in texts))
        if len(calls) == 5:
            raise KeyboardInterrupt  # as a kill would stop it
        return encode(texts, *args, **kwargs)

    monkeypatch.setattr(ws.embedder, "encode", dies_on_the_fifth_batch)
    with pytest.raises(KeyboardInterrupt):
        ws.update_index("demo")
    assert set(read) == {16}  # never the whole mailbox at once
    assert all(len(c) == 8 for c in calls)
    # a read is embedded shortest first, so one batch's emails need little padding
    assert calls[0][-1] <= calls[1][0] and calls[2][-1] <= calls[3][0]
    on_disk = EmailIndex(ws.index("demo").path)
    assert len(on_disk) == 32  # saved after 16 and 32 emails
    monkeypatch.setattr(ws.embedder, "encode", encode)
    ws._indexes.clear()
    assert ws.update_index("demo") == 65 - 32  # the rest only
