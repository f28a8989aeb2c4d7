"""Data playback throughput: emails per minute with several emails per llama.cpp decode
(``[playback] batch``, ``llama_batch.BatchedCompleter``) against the one-at-a-time loop
(llama-cpp-python ``create_completion`` per email, its prompt cache reusing the shared
few-shot examples), on the same GGUF with greedy decoding, and how many instructions come
out the same.

The emails are David's (../shared/data/panza), else the shipped demo mailbox.
"""

from __future__ import annotations

import argparse
import time

from common import SHARED, report, temp_home


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=48)
    parser.add_argument("--batches", default="4,8,16", help="sequences per decode to try")
    parser.add_argument("--max-tokens", type=int, default=80)
    parser.add_argument("--gguf", help="GGUF to play back with (default: the embedded model)")
    parser.add_argument("--name", default="playback", help="results: bench/results/NAME.json")
    args = parser.parse_args()

    temp_home("playback")
    from panza_core import cpu_backend, llama, prompting, replies, threads
    from panza_core.llama_batch import BatchedCompleter
    from panza_core.models import chat_template, eos_text
    from panza_core.workspace import Workspace
    from panza_tui.cli import demo
    from sync.importer import import_path
    from training import playback

    ws = Workspace()
    if args.gguf:
        ws = ws.with_config(models={"llm": args.gguf})
    ws.store.add_account("me", [demo.ADDRESS])
    source = SHARED / "panza" / "david.jsonl"
    import_path(ws.store, "me", source if source.exists() else demo.mailbox())
    template = chat_template(ws.llm)
    prompts = []
    for message in ws.store.messages("me")[: args.emails]:
        thread = replies.context_of(ws.store, "me", message)
        parent = thread[-1].text if thread else ""
        prompts.append(playback.playback_prompt(template, message, parent))
    stops = [*prompting.turn_ends(template, eos_text(ws.llm)), "\n"]
    n_threads = threads.pick(0, reserve=0)  # a batch job, as playback runs
    llm = llama.load(ws.llm.path, n_ctx=2048, n_threads=n_threads)

    def one_at_a_time() -> list[str]:
        llm.reset()
        return [
            llama.stream(llm, p, max_tokens=args.max_tokens, temperature=0.0, stop=stops).text
            for p in prompts
        ]

    started = time.perf_counter()
    serial = one_at_a_time()
    serial_s = time.perf_counter() - started
    rows = [["one at a time", 1, len(prompts) / serial_s * 60, 1.0, len(prompts)]]
    for n_seq in [int(b) for b in args.batches.split(",")]:
        with BatchedCompleter(llm, n_seq=n_seq, n_ctx=2048, n_threads=n_threads) as batched:
            started = time.perf_counter()
            texts = batched.complete(prompts, args.max_tokens, stops)
            seconds = time.perf_counter() - started
        same = sum(a == b for a, b in zip(serial, texts, strict=True))
        rows.append([f"batched x{n_seq}", n_seq, len(prompts) / seconds * 60,
                     serial_s / seconds, same])  # fmt: skip
    backend = cpu_backend.loaded()
    report(
        args.name, ["loop", "sequences", "emails_per_min", "speedup", "same_as_one_at_a_time"],
        rows,
        {"emails": len(prompts), "gguf": str(ws.llm.path), "threads": n_threads,
         "max_tokens": args.max_tokens, "greedy": True,
         "llama_cpp_cpu_backend": backend.variant if backend else None},
    )  # fmt: skip


if __name__ == "__main__":
    main()
