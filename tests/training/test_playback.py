"""Data playback with the real embedded model: output, caching, resuming."""

import pytest

from panza_tui.cli.demo import ADDRESS, mailbox
from panza_tui.core.store import Message
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
