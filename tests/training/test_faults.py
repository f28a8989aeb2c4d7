"""Bad input gets a clear error naming the cause, and nothing finished is lost."""

from __future__ import annotations

import shutil

import pytest

from panza_core.errors import CheckpointError, ModelError, PanzaError, PipelineError

pytestmark = pytest.mark.slow


def test_corrupt_adapter_is_named_and_the_run_marked_failed(david, tmp_path):
    from training import export

    ws = david.ws
    broken = tmp_path / "adapter"
    shutil.copytree(david.trained.adapter, broken)
    (broken / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    run = ws.store.start_run("david", "train", "corrupt", {})
    ws.store.finish_run(run, "done", str(broken))
    with pytest.raises(CheckpointError, match="cannot load the adapter"):
        export.export(ws, "david", "Q8_0", train_run=run)
    failed = ws.store.latest_run("david", "export")
    assert failed.id == david.adapter.run_id  # the failed export did not replace the good one
    assert david.adapter.path.exists()


def test_unknown_quantization_fails_before_any_work(david):
    from training import export

    with pytest.raises(ModelError, match="unknown quantization type 'Q3_X'"):
        export.export(david.ws, "david", "Q3_X")


def test_truncated_gguf_is_named(david, tmp_path):
    from panza_core import llama

    truncated = tmp_path / "model.gguf"
    truncated.write_bytes(david.merged.path.read_bytes()[:1_000_000])
    with pytest.raises(CheckpointError, match="model.gguf"):
        llama.load(truncated)
    with pytest.raises(CheckpointError, match="no such model file"):
        llama.load(tmp_path / "missing.gguf")


def test_not_a_model_path(tmp_path):
    from panza_core import models

    with pytest.raises(ModelError, match="expected a .gguf file"):
        models.resolve_llm(str(tmp_path))
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf at all")
    with pytest.raises(ModelError, match="junk.gguf"):
        models.chat_template(models.resolve_llm(str(junk)))


def test_training_before_playback_says_what_to_run(workspace):
    from training import finetune

    workspace.store.add_account("fresh")
    with pytest.raises(PipelineError, match="panza playback --account fresh"):
        finetune.train(workspace, "fresh")


def test_empty_instruction_is_refused(david):
    from panza_core.drafting import Drafter

    drafter = Drafter(david.ws, "david")
    with pytest.raises(PanzaError, match="instruction is empty"):
        drafter.draft(drafter.request("   "))
