"""Playback and training throughput on David's 166 emails (../shared/data/panza/david.jsonl).

- playback: emails/min through llama.cpp on the embedded model;
- training: s/step and s/epoch of one LoRA epoch (batch 8), and on the same first batches
  a plain PEFT + transformers loop (``model(input_ids, labels=...)``, full logits) for the
  ratio; peak RSS after each phase.
"""

from __future__ import annotations

import argparse
import time

from common import SHARED, report, temp_home


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--compare-steps", type=int, default=4)
    parser.add_argument("--playback-limit", type=int, default=0, help="for a quick smoke run")
    args = parser.parse_args()
    temp_home("pipeline")
    from panza_core.workspace import Workspace
    from sync.importer import import_path
    from training import base_model, dataset, examples, finetune, loop, methods, playback

    ws = Workspace()
    ws.store.add_account("david")
    import_path(ws.store, "david", SHARED / "panza" / "david.jsonl")

    started = time.perf_counter()
    limit = args.playback_limit
    counts = playback.run(ws.store, "david", ws.llm, ws.config.playback, limit=limit).counts
    playback_s = time.perf_counter() - started
    played = counts.get("generated", 0) + counts.get("fallback", 0)
    playback_rss = loop.peak_rss_mb()

    ws = ws.with_config(training={"epochs": 1})
    result = finetune.train(ws, "david", force=True)
    m = result.metrics.to_json()
    train_rss = loop.peak_rss_mb()

    # The same first batches through ours and through a plain PEFT loop.
    torch = base_model.setup_torch()
    from peft import get_peft_model

    train_pairs, _ = examples.training_pairs(ws, "david")
    batches = None
    timings = {}
    for name in ("panza", "plain peft"):
        model, tokenizer = base_model.load(ws.llm)
        model = get_peft_model(model, methods.lora_config(ws.config.training)).train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        encoded = examples.encode_pairs(ws, "david", tokenizer, train_pairs)
        batches = dataset.batches(encoded, ws.config.training.batch_size, 0, 0)[
            : args.compare_steps
        ]
        start = time.perf_counter()
        for batch in batches:
            for example in batch:
                if name == "panza":
                    loss, count = loop.example_loss(model, example, "cpu")
                    (loss / count).backward()
                else:
                    out = model(
                        input_ids=torch.tensor([example.input_ids]),
                        labels=torch.tensor([example.labels]),
                    )
                    out.loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        timings[name] = (time.perf_counter() - start) / len(batches)
    rows = [
        ["playback", f"{played} emails", played / playback_s * 60, "emails/min", playback_rss],
        [
            "training (1 epoch)",
            f"{m['steps']} steps",
            m["seconds"] / m["steps"],
            "s/step",
            train_rss,
        ],
        ["training (1 epoch)", f"{m['examples']} emails", m["seconds"], "s/epoch", train_rss],
        [f"same {len(batches)} batches: panza", "", timings["panza"], "s/step", "-"],
        [f"same {len(batches)} batches: plain peft", "", timings["plain peft"], "s/step", "-"],
        ["ratio (panza / plain peft)", "", timings["panza"] / timings["plain peft"], "", "-"],
    ]
    report(
        "pipeline", ["phase", "size", "value", "unit", "peak_rss_mb"], rows,
        {"playback_counts": dict(counts), "threads": torch.get_num_threads(),
         "train_loss_first_last": [m["first_loss"], m["last_loss"]], "test_loss": m["test_loss"]},
    )  # fmt: skip


if __name__ == "__main__":
    main()
