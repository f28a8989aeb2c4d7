"""Training throughput: one epoch on David's 166 emails (../shared/data/panza/david.jsonl).

Each row runs in its own process (so peak RSS is its own): Panza's loop (``finetune.train``)
for LoRA, RoSA and LoRA over a 4-bit NF4 base (bitsandbytes, on the CPU too), and a plain
PEFT + transformers loop over the same batches in the same order (``model(input_ids,
labels=...)``, gradient accumulation, AdamW, clipping) for the ratio. Times are of the
training loop only (model loading and tokenising excluded); losses are nats per email token.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from common import SHARED, report, temp_home

ACCOUNT = "david"


def worker(spec: str) -> dict:
    """Run one measurement in this process; ``spec`` is ``panza:<method>[:nf4]`` or ``plain``."""
    from panza_core.workspace import Workspace
    from training import finetune

    ws = Workspace().with_config(training={"epochs": 1, "checkpoint_every": 0})
    if spec == "plain":
        return plain_loop(ws)
    _, method, *rest = spec.split(":")
    ws = ws.with_config(training={"method": method, "quantize": rest[0] if rest else "none"})
    m = finetune.train(ws, ACCOUNT, force=True).metrics
    return {"loop_s": m.loop_seconds, "steps": m.steps, "examples": m.examples,
            "device": m.device, "dtype": m.dtype, "peak_rss_mb": m.peak_rss_mb,
            "peak_gpu_mb": m.peak_gpu_mb, "first_loss": m.first_loss,
            "last_loss": m.last_loss, "test_loss": m.test_loss}  # fmt: skip


def plain_loop(ws) -> dict:  # type: ignore[no-untyped-def]
    """The same epoch as a user would write it with PEFT and transformers alone."""
    from training import base_model, dataset, device, examples, loop, methods

    torch = base_model.setup_torch(ws.config.training.threads)
    from peft import get_peft_model

    t = ws.config.training
    placement = device.pick(t)
    torch.manual_seed(t.seed)
    train_pairs, _ = examples.training_pairs(ws, ACCOUNT)
    model, tokenizer = base_model.load(ws.llm, "float32", placement.device)
    encoded = examples.encode_pairs(ws, ACCOUNT, tokenizer, train_pairs)
    model = get_peft_model(model, methods.lora_config(t)).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=methods.learning_rate(t), weight_decay=0.0)
    autocast = torch.autocast(placement.device, dtype=torch.bfloat16,
                              enabled=placement.dtype == "bfloat16")  # fmt: skip
    batches = dataset.batches(encoded, t.batch_size, t.seed, 0)
    batches = batches[: t.max_steps] if t.max_steps else batches
    start = time.perf_counter()
    for batch in batches:
        n_tokens = sum(sum(1 for x in e.labels[1:] if x != dataset.IGNORE) for e in batch)
        for e in batch:
            ids = torch.tensor([e.input_ids], device=placement.device)
            labels = torch.tensor([e.labels], device=placement.device)
            with autocast:
                out = model(input_ids=ids, labels=labels)
            n = sum(1 for x in e.labels[1:] if x != dataset.IGNORE)
            (out.loss * n / n_tokens).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    loop_s = time.perf_counter() - start
    gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {"loop_s": loop_s, "steps": len(batches), "examples": len(encoded),
            "device": placement.device, "dtype": placement.dtype,
            "peak_rss_mb": loop.peak_rss_mb(), "peak_gpu_mb": gpu}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument(
        "--methods", default="lora,rosa,lora:nf4", help="Panza methods (:nf4 for a 4-bit base)"
    )
    parser.add_argument("--playback-limit", type=int, default=0, help="for a quick smoke run")
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker)))
        return
    home = temp_home("train")
    from panza_core.workspace import Workspace
    from sync.importer import import_path
    from training import playback

    ws = Workspace()
    ws.store.add_account(ACCOUNT)
    import_path(ws.store, ACCOUNT, SHARED / "panza" / "david.jsonl")
    ws.update_index(ACCOUNT)
    playback.run(ws.store, ACCOUNT, ws.llm, ws.config.playback, limit=args.playback_limit)
    ws.store.close()
    specs = [f"panza:{m}" for m in args.methods.split(",")] + ["plain"]
    results = {}
    for spec in specs:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", spec], env=os.environ, check=True,
            capture_output=True, text=True,
        ).stdout  # fmt: skip
        results[spec] = json.loads(out.split("RESULT ", 1)[1])
        print(f"{spec}: {results[spec]}", file=sys.stderr)
    rows = []
    for spec, r in results.items():
        label = "plain PEFT + transformers (lora)" if spec == "plain" else spec.replace(":", " ")
        gpu = f"{r['peak_gpu_mb']:.0f}" if r["peak_gpu_mb"] else "-"
        losses = [r.get(k, float("nan")) for k in ("first_loss", "last_loss", "test_loss")]
        rows.append([label, r["device"], r["dtype"], r["examples"], r["steps"], r["loop_s"],
                     r["loop_s"] / r["steps"], round(r["peak_rss_mb"]), gpu, *losses])  # fmt: skip
    ratio = results["panza:lora"]["loop_s"] / results["plain"]["loop_s"]
    rows.append(["ratio panza lora / plain", "", "", "", "", ratio, "", "", "", "", "", ""])
    report(
        "train", ["run", "device", "dtype", "emails", "steps", "s/epoch", "s/step",
                  "peak_rss_mb", "peak_gpu_mb", "first_loss", "last_loss", "test_loss"], rows,
        {"home": str(home), "threads": os.cpu_count(), "results": results,
         "ratio_lora_vs_plain": ratio},
    )  # fmt: skip


if __name__ == "__main__":
    main()
