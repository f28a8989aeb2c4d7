"""One adapter per account (OPPU): two accounts with their own LoRA adapters on one loaded
base, drafting in turn; model versions that can be activated and rolled back; retraining
after new mail without redoing playback."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import shared

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def isabel(david):
    """A second account in David's workspace: a handful of Isabel's emails, 2 LoRA steps,
    an adapter-only export."""
    from sync.importer import import_path
    from training import export, finetune, playback

    ws = david.ws
    ws.store.add_account("isabel")
    import_path(ws.store, "isabel", shared("panza", "isabel.jsonl"))
    ws.update_index("isabel")
    playback.run(ws.store, "isabel", ws.llm, ws.config.playback, limit=8)
    short = ws.with_config(training={"max_steps": 2})
    finetune.train(short, "isabel")
    return export.export(short, "isabel", "Q8_0", adapter_only=True)


def test_two_accounts_share_the_base_and_switch_adapters(david, isabel, monkeypatch):
    from panza_core import llama
    from panza_core.drafting import Drafter, export_choice

    ws = david.ws
    loads = []
    real_load = llama.load
    monkeypatch.setattr(llama, "load", lambda *a, **k: loads.append(a[0]) or real_load(*a, **k))
    settings = replace(ws.config.drafting, temperature=0.0, max_tokens=32, threads=1, seed=7)
    drafters = {
        name: Drafter(
            ws, name, use_rag=False, settings=settings, choice=export_choice(ws, ws.store.run(run))
        )  # fmt: skip
        for name, run in (("david", david.adapter.run_id), ("isabel", isabel.run_id))
    }
    instruction = "Write an email to Anna thanking her for the invitation to speak"
    david, isabel = drafters["david"], drafters["isabel"]
    first = david.draft(david.request(instruction)).draft
    theirs = isabel.draft(isabel.request(instruction)).draft
    again = david.draft(david.request(instruction)).draft
    assert len(loads) == 1  # one base model loaded for both accounts
    assert drafters["david"]._model is drafters["isabel"]._model
    assert first == again  # switching back restores David's adapter exactly

    # Each account's draft is what llama.cpp writes with only that adapter loaded.
    for name, text in (("david", first), ("isabel", theirs)):
        choice = drafters[name].choice
        alone = real_load(choice.path, choice.lora, n_ctx=settings.n_ctx, n_threads=1, seed=7)
        prompt = drafters[name].prompt(drafters[name].request(instruction), [])
        expected = llama.stream(
            alone, prompt, max_tokens=32, temperature=0.0,
            repeat_penalty=settings.repeat_penalty, seed=7, stop=["<|im_end|>"],
        ).text.strip()  # fmt: skip
        assert text == expected, name


def test_versions_activate_and_roll_back(david):
    from typer.testing import CliRunner

    from panza_core import versions
    from panza_core.errors import PipelineError
    from panza_tui.cli import app

    store = david.ws.store
    listed = versions.versions(store, "david")
    runs = [v.run for v in listed]
    assert {david.merged.run_id, david.adapter.run_id} <= set(runs)
    assert runs == sorted(runs, reverse=True) and sum(v.active for v in listed) == 1
    versions.activate(store, "david", david.adapter.run_id)
    rolled = versions.rollback(store, "david")
    assert rolled.run == runs[runs.index(david.adapter.run_id) + 1]
    assert store.account("david").active_export == rolled.run
    with pytest.raises(PipelineError, match="not a finished export"):
        versions.activate(store, "david", david.trained.run_id)  # a training run
    result = CliRunner().invoke(
        app, ["adapters", "activate", "--account", "david", str(david.adapter.run_id)]
    )
    assert result.exit_code == 0 and store.account("david").active_export == david.adapter.run_id
    listing = CliRunner().invoke(app, ["adapters", "list", "--account", "david"])
    assert f"#{david.adapter.run_id}" in listing.stdout and "adapter" in listing.stdout


def test_new_mail_retrains_without_redoing_playback(david, isabel):
    from panza_core.store import Message
    from training import examples, playback

    ws = david.ws
    train_before, test_before = examples.training_pairs(ws, "isabel")
    key_before = examples.input_hash(ws, "isabel", train_before)
    synced = Message(
        subject="Seminar room", message_id="<new-1@example.org>",
        text="Dear Maria,\n\nCould we move Thursday's seminar to room 204? The projector in "
        "the usual room is broken.\n\nBest,\n\nIsabel",
    )  # fmt: skip
    ws.store.add_message("isabel", synced)  # as a sync would
    report = playback.run(ws.store, "isabel", ws.llm, ws.config.playback, limit=1)
    assert report.counts["cached"] == len(train_before) + len(test_before)  # none redone
    assert report.counts["generated"] + report.counts["fallback"] == 1
    train_after, test_after = examples.training_pairs(ws, "isabel")
    assert len(train_after) + len(test_after) == len(train_before) + len(test_before) + 1
    grew = len(train_after) > len(train_before)
    assert (examples.input_hash(ws, "isabel", train_after) != key_before) == grew
