"""End to end on David's real mail (../shared/data/panza/david.jsonl): import, playback on a
handful, a few LoRA steps, GGUF export (merged and adapter-only), drafting with RAG."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.slow


def test_import_and_playback(david):
    assert david.report.counts["kept"] == david.ws.store.count_messages("david") >= 160
    assert david.played.counts["generated"] + david.played.counts["fallback"] == 10


def test_training_takes_steps_and_saves_a_reusable_adapter(david):
    from training import finetune

    m = david.trained.metrics
    assert m.steps == 4 and len(m.losses) == 4
    assert all(0 < loss < 10 for loss in m.losses)
    assert (david.trained.adapter / "adapter_model.safetensors").stat().st_size > 100_000
    again = finetune.train(david.ws, "david")
    assert again.reused and again.run_id == david.trained.run_id


def test_merged_gguf_round_trips_through_llama_cpp(david):
    from gguf import GGUFReader

    m = david.merged.metrics
    assert m.check_f32.max_abs_diff < 0.1  # F32 GGUF vs merged torch, same logits
    assert m.check_f32.top1_agreement_clear == 1.0
    assert m.check.top1_agreement >= 0.9  # after Q8_0 quantization
    reader = GGUFReader(david.merged.path)
    file_type = reader.fields["general.file_type"]
    assert int(file_type.parts[file_type.data[0]][0]) == 7  # LLAMA_FTYPE_MOSTLY_Q8_0
    assert "output.weight" not in {t.name for t in reader.tensors}  # tied embeddings


def test_adapter_gguf_is_a_llama_cpp_lora(david):
    from gguf import GGUFReader

    reader = GGUFReader(david.adapter.path)
    kind = reader.fields["general.type"]
    assert bytes(kind.parts[kind.data[0]]) == b"adapter"
    names = {t.name for t in reader.tensors}
    assert "blk.0.attn_q.weight.lora_a" in names and "blk.29.ffn_down.weight.lora_b" in names
    assert david.adapter.metrics.check.top1_agreement >= 0.9


def test_draft_json_streams_and_retrieves_real_emails(david):
    from typer.testing import CliRunner

    from panza_tui.cli import app

    result = CliRunner().invoke(
        app, ["draft", "--account", "david", "--json",
              "Ask Tom to reactivate Peter's IT account for more experiments"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{") :])
    assert set(out) == {"draft", "retrieved", "timings", "to_suggestions", "subject", "facts"}
    # the instruction's facts (Tom, Peter, IT is no name): the check of the shown candidate
    assert set(out["facts"]) == {"recall", "carried", "missing", "invented", "copied"}
    assert sorted(out["facts"]["carried"] + out["facts"]["missing"]) == ["Peter", "Tom"]
    assert out["draft"].strip() and out["subject"].strip() and "\n" not in out["subject"]
    assert out["to_suggestions"] == []  # David's mail has no addresses to suggest from
    assert out["timings"]["tokens_per_s"] > 0 and out["timings"]["ttft_ms"] > 0
    assert 1 <= len(out["retrieved"]) <= 3
    for hit in out["retrieved"]:
        assert david.ws.store.message(hit["id"]).text == hit["text"]
        assert hit["score"] >= david.ws.config.retrieval.threshold


def test_drafting_never_retrieves_the_email_being_drafted(david):
    from panza_core.drafting import Drafter

    ws = david.ws
    target = ws.store.messages("david", "resurrect")[0]
    drafter = Drafter(ws, "david")
    pieces = []
    request = drafter.request(target.text[:200], exclude=[target.id])
    result = drafter.draft(request, on_token=pieces.append)
    assert target.id not in [r.id for r in result.retrieved]
    assert len(pieces) == result.timings["tokens"] > 0
    assert "".join(pieces).strip() == result.draft
    assert "adapter" in drafter.choice.label  # the active export is the adapter-only one


def test_cli_errors_are_one_clear_line(david, capsys):
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "panza_tui", "train", "--account", "nobody"],
        capture_output=True, text=True, env={**__import__("os").environ},
    )  # fmt: skip
    assert run.returncode == 2
    assert "no account 'nobody'" in run.stderr and "Traceback" not in run.stderr


def test_export_to_ollama_writes_a_modelfile_and_registers_it(david, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from panza_tui.cli import app
    from tests.training.test_ollama import _fake_ollama

    active = david.ws.store.account("david").active_export
    log = _fake_ollama(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    # The fixture's own LoRA run: other tests train newer (RoSA, full) runs of David.
    run = str(david.trained.run_id)
    result = CliRunner().invoke(app, [
        "export", "--account", "david", "--run", run, "--adapter-only", "--ollama", "panza-david",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "(reused)" in result.output and "ollama run panza-david" in result.output
    modelfile = david.adapter.path.parent / "Modelfile"
    lines = modelfile.read_text().splitlines()
    assert f"ADAPTER {david.adapter.path}" in lines  # over the base the adapter was made for
    assert f"FROM {david.ws.llm.path}" in lines
    assert log.read_text().split() == ["create", "panza-david", "-f", str(modelfile)]
    david.ws.store.set_active_export("david", active)
