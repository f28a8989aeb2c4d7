"""A user's own Hugging Face model folder works through the whole pipeline: playback with
transformers, LoRA training, GGUF export with the vocabulary built from tokenizer.json, and
drafting on llama.cpp with the same tokens as training."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_hugging_face_folder_end_to_end(workspace):
    from panza_core import llama, models
    from panza_core.drafting import Drafter
    from panza_tui.cli.demo import ADDRESS, mailbox
    from sync.importer import import_path
    from training import base_model, export, finetune, playback

    # The dequantized copy of the embedded model is a plain Hugging Face folder
    # (config.json, model.safetensors, tokenizer.json): use it as the user's model.
    folder = base_model.hf_folder(models.resolve_llm("embedded"))
    ws = workspace.with_config(
        models={"llm": str(folder)}, training={"max_steps": 1, "batch_size": 2,
        "rag_probability": 0.0}, playback={"max_tokens": 24}, drafting={"max_tokens": 16},
    )  # fmt: skip
    assert ws.llm.kind == "hf"

    ws.store.add_account("me", [ADDRESS])
    import_path(ws.store, "me", mailbox())
    counts = playback.run(ws.store, "me", ws.llm, ws.config.playback, limit=4).counts
    assert counts["generated"] + counts["fallback"] == 4
    trained = finetune.train(ws, "me")
    assert trained.metrics.steps == 1
    exported = export.export(ws, "me", "Q8_0")
    assert exported.metrics.check_f32.top1_agreement_clear == 1.0

    _, tokenizer = base_model.load(ws.llm)
    llm = llama.load(exported.path, n_ctx=256)
    for text in ("Room 101 on 12/03/2026 at 14:30", "Grüße — café\n\n  indented"):
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == llm.tokenize(
            text.encode(), add_bos=False, special=True
        )
    drafter = Drafter(ws, "me")
    result = drafter.draft(drafter.request("Thank Kofi for the maples"))
    assert result.timings["tokens"] > 0


@pytest.mark.slow
def test_transformers_playback_generates_a_batch_as_it_generates_one(workspace):
    """Left-padded batched ``generate`` (the GPU path, run on the CPU where there is none)
    writes what one prompt at a time writes, under greedy decoding in float32."""
    from panza_core import models
    from panza_core.models import chat_template
    from panza_tui.cli.demo import mailbox
    from sync.importer import import_path
    from training import base_model, playback

    ws = workspace.with_config(
        models={"llm": str(base_model.hf_folder(models.resolve_llm("embedded")))}
    )
    ws.store.add_account("me")
    import_path(ws.store, "me", mailbox())
    template = chat_template(ws.llm)
    prompts = [playback.playback_prompt(template, m) for m in ws.store.messages("me")[:3]]
    complete = playback.transformers_completer(ws.llm)
    together = complete(prompts, 12, 0.0, 0)
    alone = [complete([p], 12, 0.0, 0)[0] for p in prompts]
    assert all(together)
    import torch

    if not torch.cuda.is_available():  # float32 on the CPU: the same text; bf16 may round apart
        assert together == alone, (together, alone)
