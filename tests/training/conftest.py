"""The trained pipeline on David's mail, shared by the slow training tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.conftest import shared


@pytest.fixture(scope="session")
def david(tmp_path_factory, cache_dir):
    from panza_tui.core.workspace import Workspace
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
