"""Drafting speed: ``Drafter.draft`` (retrieval + prompt + streaming) vs raw llama-cpp-python
on the same GGUF, the same prompt and the same threads, greedy so both emit the same tokens.

Prints time to first token and tokens/s for each, and the pipeline's overhead.
"""

from __future__ import annotations

import argparse
import time

from common import median, report, temp_home


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", help="GGUF to draft with (default: the embedded model)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--name", default="draft", help="results file: bench/results/NAME.json")
    args = parser.parse_args()

    temp_home("draft")
    from panza_tui.cli import demo
    from panza_tui.core import cpu_backend, llama, threads
    from panza_tui.core.drafting import Drafter
    from panza_tui.core.workspace import Workspace
    from sync.importer import import_path

    ws = Workspace().with_config(drafting={"temperature": 0.0, "max_tokens": args.max_tokens})
    if args.gguf:
        ws = ws.with_config(models={"llm": args.gguf})
    ws.store.add_account("demo", [demo.ADDRESS], demo.PREAMBLE)
    import_path(ws.store, "demo", demo.mailbox())
    ws.update_index("demo")
    drafter = Drafter(ws, "demo")
    drafter.load()
    instruction = demo.EXAMPLE
    prompt = drafter.prompt(instruction, drafter.retrieve(instruction))

    llama_cpp = llama.import_llama_cpp()
    n = threads.pick(ws.config.drafting.threads)
    raw = llama_cpp.Llama(
        model_path=str(drafter.choice.path), n_ctx=ws.config.drafting.n_ctx, n_threads=n,
        n_threads_batch=n, seed=0, verbose=False,
    )  # fmt: skip

    # llama-cpp-python keeps the last prompt's KV cache and skips re-evaluating a repeated
    # prompt; reset before every run so time to first token includes the prompt, as for a
    # new instruction.
    def raw_run() -> tuple[float, float, int]:
        raw.reset()
        start = time.perf_counter()
        first, count = None, 0
        for chunk in raw.create_completion(
            prompt, max_tokens=args.max_tokens, temperature=0.0, stop=ws.stops, stream=True
        ):
            if chunk["choices"][0]["text"]:
                first = first or time.perf_counter()
                count += 1
        end = time.perf_counter()
        return (first - start) * 1000, (count - 1) / (end - first), count

    def ours_run() -> tuple[float, float, int, float]:
        drafter.forget_prompt()
        result = drafter.draft(instruction)
        t = result.timings
        return t["ttft_ms"], t["tokens_per_s"], t["tokens"], t["retrieval_ms"]

    raw_run(), ours_run()  # warm both: page in the weights, build the caches
    raws, ours = [], []
    for _ in range(args.runs):  # interleaved, so drift in machine load hits both alike
        raws.append(raw_run())
        ours.append(ours_run())
    raw_ttft, raw_tps = median([r[0] for r in raws]), median([r[1] for r in raws])
    our_ttft, our_tps = median([o[0] for o in ours]), median([o[1] for o in ours])
    retrieval = median([o[3] for o in ours])
    rows = [
        ["raw llama-cpp-python", raw_ttft, raw_tps, raws[0][2], "-"],
        ["panza Drafter.draft", our_ttft, our_tps, ours[0][2], retrieval],
        ["ratio (panza / raw)", our_ttft / raw_ttft, our_tps / raw_tps, "-", "-"],
    ]
    backend = cpu_backend.loaded()
    report(
        args.name,
        ["pipeline", "ttft_ms", "tokens_per_s", "tokens", "retrieval_ms"],
        rows,
        {
            "gguf": str(drafter.choice.path), "threads": n, "runs": args.runs,
            "llama_cpp_cpu_backend": backend.variant if backend else None,
            "prompt_chars": len(prompt),
            "decode_overhead_pct": (1 - our_tps / raw_tps) * 100,
            "ttft_overhead_pct_incl_retrieval": (our_ttft + retrieval) / raw_ttft * 100 - 100,
        },
    )  # fmt: skip


if __name__ == "__main__":
    main()
