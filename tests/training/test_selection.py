"""Training-set selection (``[training] max_emails``): recency, near-duplicates, caps per
correspondent and thread, a stable held-out side, and playback on the selection only."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from panza_core.config import TrainingConfig
from panza_core.store import Message
from panza_tui.cli.demo import ADDRESS, mailbox
from sync.importer import import_path
from training import dataset, examples, playback, selection


def mail(i: int, to: str, refs: str | None = None) -> Message:
    return Message(text=f"email {i}", subject=f"s{i}", to_addrs=to, refs=refs, id=i + 1)


def unit_vectors(n: int, dim: int = 64) -> np.ndarray:
    vectors = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_newest_first_with_a_cap_per_correspondent_filled_up_when_short():
    # emails 0-5 go to a@x, 6-9 each to someone else; newest first
    emails = [mail(i, "a@x" if i < 6 else f"p{i}@x") for i in range(10)]
    config = TrainingConfig(max_per_correspondent=2, max_per_thread=0)
    skipped: Counter = Counter()
    chosen = selection.diverse(emails, unit_vectors(10), 5, config, skipped)
    assert [m.id - 1 for m in chosen] == [0, 1, 6, 7, 8]
    assert skipped == Counter(per_correspondent=4, over_budget=1)
    # with room for 8 the capped emails fill up, newest first
    skipped = Counter()
    chosen = selection.diverse(emails, unit_vectors(10), 8, config, skipped)
    assert [m.id - 1 for m in chosen] == [0, 1, 2, 3, 6, 7, 8, 9]
    assert skipped == Counter(per_correspondent=2)


def test_near_duplicates_and_long_threads_are_left_out():
    emails = [mail(i, f"p{i}@x", refs="<root@x>" if i >= 4 else None) for i in range(8)]
    vectors = unit_vectors(8)
    vectors[2] = vectors[0] * 0.999 + vectors[1] * 0.001  # all but a copy of email 0
    vectors[2] /= np.linalg.norm(vectors[2])
    config = TrainingConfig(max_per_thread=2, duplicate_similarity=0.95)
    skipped: Counter = Counter()
    chosen = selection.diverse(emails, vectors, 8, config, skipped)
    assert [m.id - 1 for m in chosen] == [0, 1, 3, 4, 5, 6, 7]  # the thread is filled up
    assert skipped == Counter(near_duplicate=1)
    chosen = selection.diverse(emails, vectors, 5, config, Counter())
    assert [m.id - 1 for m in chosen] == [0, 1, 3, 4, 5]


@pytest.fixture()
def demo(workspace):
    workspace.store.add_account("demo", [ADDRESS])
    import_path(workspace.store, "demo", mailbox())
    return workspace


def add_newest(ws, texts: list[str], prefix: str) -> None:
    for i, text in enumerate(texts):
        ws.store.add_message(
            "demo",
            Message(
                text=text, subject=prefix, message_id=f"<{prefix}{i}@x>",
                to_addrs=f"{prefix}{i}@example.org", date=f"2031-01-{i + 1:02d}T10:00:00+00:00",
            ),
        )  # fmt: skip


def test_a_mailbox_within_the_budget_is_chosen_whole_without_loading_a_model(demo):
    chosen = selection.choose(demo, "demo")
    assert chosen.pool == demo.store.count_messages("demo") == len(chosen.emails)
    assert not chosen.skipped and "embedder" not in demo.__dict__
    t = demo.config.training
    assert all(dataset.is_test(m.content_hash, t.seed, t.test_fraction) for m in chosen.test)
    assert chosen.emails == demo.store.messages("demo")


def test_over_the_budget_the_newest_distinct_emails_are_chosen(demo):
    thanks = [
        f"Thanks Sam, the {what} arrived this morning. Talk soon, Maya"
        for what in ("files", "files!", "files.", "files!!", "files :)", "files!!!")
    ]
    add_newest(demo, thanks, "thanks")
    ws = demo.with_config(training={"max_emails": 30})
    chosen = selection.choose(ws, "demo")
    assert (len(chosen.train), len(chosen.test)) == (24, 6)
    assert chosen.pool == demo.store.count_messages("demo")
    t = ws.config.training
    assert not any(dataset.is_test(m.content_hash, t.seed, t.test_fraction) for m in chosen.train)
    # one of the thank-you notes that differ in punctuation only, nothing else that close
    assert sum(m.subject.startswith("thanks") for m in chosen.train) == 1
    vectors = ws.index("demo").vectors([m.id for m in chosen.train])
    similarity = vectors @ vectors.T - 2 * np.eye(len(vectors))
    assert similarity.max() < t.duplicate_similarity
    assert chosen.skipped["near_duplicate"] >= 1 and "near duplicate" in chosen.summary()
    # newest first: the newest training-side email is in, the oldest is not
    side = [m for m in demo.store.messages("demo") if not dataset.is_test(m.content_hash, 42, 0.2)]
    kept = {m.id for m in chosen.train}
    assert side[0].id in kept and side[-1].id not in kept


def test_new_mail_never_moves_an_email_between_training_and_evaluation(demo):
    ws = demo.with_config(training={"max_emails": 30})
    before = selection.choose(ws, "demo")
    add_newest(
        demo, [f"Hello {name}, the meeting on {name}day is moved." for name in "ABCDEFGHIJ"], "new"
    )
    after = selection.choose(ws, "demo")
    held_out = {m.id for m in before.test}
    assert not held_out & {m.id for m in after.train}
    assert not {m.id for m in before.train} & {m.id for m in after.test}
    new = {m.id for m in demo.store.messages("demo") if m.subject.startswith("new")}
    assert len(held_out & {m.id for m in after.test}) >= len(before.test) - len(new)


def test_playback_and_training_pairs_cover_the_selection_only(demo):
    ws = demo.with_config(training={"max_emails": 20})
    chosen = selection.choose(ws, "demo")
    prompts = []

    def complete(prompt: str, max_tokens: int, temperature: float, seed: int) -> str:
        prompts.append(prompt)
        return " to Sam about the garden."

    report = playback.run(
        ws.store, "demo", ws.llm, ws.config.playback, completer=complete, messages=chosen.emails
    )
    assert len(prompts) == report.counts["generated"] == len(chosen.emails) == 20
    train, test = examples.training_pairs(ws, "demo", chosen)
    assert {m.id for m, _ in train} == {m.id for m in chosen.train}
    assert {m.id for m, _ in test} == {m.id for m in chosen.test}
    # the whole mailbox is still in the retrieval index
    assert set(ws.index("demo").keys()) >= {m.id for m in demo.store.messages("demo")}


@pytest.mark.slow
def test_panza_train_plays_back_and_trains_only_the_selection(demo, monkeypatch):
    from typer.testing import CliRunner

    from panza_core.workspace import Workspace
    from panza_tui.cli import app
    from training.finetune import SELECTION_FILE

    monkeypatch.setenv("PANZA_TRAINING__MAX_EMAILS", "10")
    monkeypatch.setenv("PANZA_TRAINING__BATCH_SIZE", "2")
    monkeypatch.setenv("PANZA_PLAYBACK__MAX_TOKENS", "24")
    result = CliRunner().invoke(app, ["train", "--account", "demo", "--max-steps", "1"])
    assert result.exit_code == 0, result.output
    assert "learning from 8 training and 2 evaluation emails of 65" in result.output
    run = demo.store.latest_run("demo", "train")
    assert run.status == "done" and run.config["selection"]["pool"] == 65
    recorded = json.loads((demo.run_path("demo", run.id) / SELECTION_FILE).read_text())
    ws = Workspace()  # with the settings the command ran with
    key = playback.prompt_hash(ws.config.playback, ws.chat_template)
    played = {m.content_hash for m, _ in ws.store.pairs("demo", ws.llm.fingerprint, key)}
    assert len(played) == 10 and set(recorded["train"]) | set(recorded["test"]) == played
    assert len(recorded["train"]) == 8 and len(recorded["test"]) == 2
