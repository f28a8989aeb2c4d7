"""The trained pipeline on David's mail, shared by the slow training tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.conftest import shared


@pytest.fixture(scope="session")
def david(tmp_path_factory, cache_dir):
    from panza_core.workspace import Workspace
    from sync.importer import import_path
    from training import export, finetune, playback

    data = shared("panza", "david.jsonl")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PANZA_HOME", str(tmp_path_factory.mktemp("david")))
        mp.setenv("PANZA_CACHE", str(cache_dir))
        mp.setenv("PANZA_TRAINING__MAX_STEPS", "4")
        mp.setenv("PANZA_TRAINING__BATCH_SIZE", "2")
        mp.setenv("PANZA_TRAINING__LR", "1e-3")
        mp.setenv("PANZA_DRAFTING__MAX_TOKENS", "48")
        ws = Workspace()
        ws.store.add_account("david")
        report = import_path(ws.store, "david", data)
        ws.update_index("david")
        played = playback.run(ws.store, "david", ws.llm, ws.config.playback, limit=10)
        trained = finetune.train(ws, "david")
        merged = export.export(ws, "david", "Q8_0")
        adapter = export.export(ws, "david", "Q8_0", adapter_only=True)
        yield SimpleNamespace(
            ws=ws, report=report, played=played, trained=trained, merged=merged, adapter=adapter
        )
        ws.store.close()


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory, cache_dir, tiny_llama):
    """David's mail played back (12 emails) by ``tiny_llama``, for the tests whose check does
    not depend on real weights (resume, DDP): a training step takes milliseconds, not
    seconds. The environment is set only while it is made; ``tiny`` sets it for a test."""
    from panza_core.workspace import Workspace
    from sync.importer import import_path
    from training import playback

    env = {"PANZA_HOME": str(tmp_path_factory.mktemp("tiny-home")),
           "PANZA_CACHE": str(cache_dir), "PANZA_MODELS__LLM": str(tiny_llama),
           "PANZA_TRAINING__BATCH_SIZE": "2", "PANZA_TRAINING__LR": "1e-3",
           "PANZA_PLAYBACK__MAX_TOKENS": "12"}  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        ws = Workspace()
        ws.store.add_account("david")
        import_path(ws.store, "david", shared("panza", "david.jsonl"))
        ws.update_index("david")
        playback.run(ws.store, "david", ws.llm, ws.config.playback, limit=12)
        ws.store.close()
    return SimpleNamespace(env=env, model=tiny_llama)


@pytest.fixture()
def tiny(tiny_home, monkeypatch):
    """``tiny(**settings)``: a workspace on ``tiny_home`` with these [training] settings, its
    environment set for this test (and so for the CLI processes it starts)."""
    import os

    from panza_core.workspace import Workspace

    for name in list(os.environ):  # none of another fixture's settings
        if name.startswith("PANZA_") and "__" in name:
            monkeypatch.delenv(name)
    for name, value in tiny_home.env.items():
        monkeypatch.setenv(name, value)
    opened = []

    def workspace(**settings):
        ws = Workspace().with_config(training=settings)
        opened.append(ws)
        return ws

    yield workspace
    for ws in opened:
        ws.store.close()
