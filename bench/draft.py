"""Drafting speed: ``Drafter.draft`` (retrieval + prompt + streaming) vs raw llama-cpp-python
on the same GGUF, the same prompt and the same threads, greedy so both emit the same tokens.

Prints time to first token and tokens/s for each, and the pipeline's overhead. Then the
first token after enter, as the app sees it, three ways: cold (nothing cached: the whole
prompt is evaluated after enter), typed (the instruction typed at ``--typing-cps``
characters per second while ``drafting.Preparer`` keeps the prompt before it evaluated)
and regenerate (the same prompt again); with whether each drafted the cold path's text.
"""

from __future__ import annotations

import argparse
import time

from common import median, report, table, temp_home


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gguf", help="GGUF to draft with (default: the embedded model)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--name", default="draft", help="results file: bench/results/NAME.json")
    parser.add_argument("--typing-cps", type=float, default=5.0, help="simulated typing speed")
    parser.add_argument("--instructions", type=int, default=3, help="typed instructions (<= 3)")
    args = parser.parse_args()

    temp_home("draft")
    from panza_core import cpu_backend, llama, threads
    from panza_core.drafting import Drafter, Preparer
    from panza_core.workspace import Workspace
    from panza_tui.cli import demo
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
    request = drafter.request(instruction)
    prompt = drafter.prompt(request, drafter.retrieve(request))

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
        result = drafter.draft(request)
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
    count = max(1, min(args.instructions, len(INSTRUCTIONS) + 1))
    first_rows, as_cold = first_token_rows(
        drafter, instruction, args.runs, args.typing_cps, Preparer, count
    )
    print(
        f"first token after enter (ms; median over {count} instructions x "
        f"{args.runs} runs; typing at {args.typing_cps:g} chars/s)"
    )
    table(["path", "first_token_ms", "same_draft_as_cold", "goal_ms"], first_rows)
    print(
        f"typed: past emails retrieved while typing were those of the whole instruction in "
        f"{as_cold:.0%} of runs (else a few words behind)"
    )
    print()
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
            "typing_cps": args.typing_cps,
            "typed_retrieval_same_as_on_enter": as_cold,
            "first_token": [
                dict(zip(["path", "first_token_ms", "same_draft_as_cold", "goal_ms"], row,
                         strict=True))
                for row in first_rows
            ],
        },
    )  # fmt: skip


INSTRUCTIONS = [
    "Tell Priya I can't make the Thursday meeting and ask to move it to Friday",
    "Thank Tom for lending me the drill and say I will return it on Sunday",
]
PAUSES = (0.2, 1.0)  # seconds from the last keystroke to enter: none beyond typing, a beat


def first_token_rows(
    drafter, instruction: str, runs: int, cps: float, Preparer, count: int = 3
) -> tuple:
    """Rows of (path, median ms from enter to the first streamed piece, whether every run
    drafted the cold path's text, the issue's goal) for cold, typed (each pause) and
    regenerate, over ``instruction`` and ``INSTRUCTIONS``."""

    def enter(text: str, retrieved=None) -> tuple[float, str]:
        start = time.perf_counter()
        first: list[float] = []
        draft = drafter.draft(
            drafter.request(text, retrieved=retrieved),
            on_token=lambda _: first or first.append(time.perf_counter()),
        )  # fmt: skip
        return (first[0] - start) * 1000, draft.draft

    paths = ["cold", *(f"typed, enter {p:g} s after" for p in PAUSES), "regenerate"]
    times: dict[str, list[float]] = {path: [] for path in paths}
    same = dict.fromkeys(paths, True)
    as_cold = []  # whether the past emails prepared while typing are those enter finds
    for _ in range(runs):
        for text in [instruction, *INSTRUCTIONS][:count]:
            drafter.forget_prompt()
            ms, cold = enter(text)
            times["cold"].append(ms)
            final = [r.id for r in drafter.retrieve(drafter.request(text))]
            for pause, path in zip(PAUSES, paths[1:-1], strict=True):
                drafter.forget_prompt()
                preparer = Preparer(drafter, drafter.request())
                for end in range(1, len(text) + 1):  # keystrokes, then enter
                    preparer.typed(text[:end])
                    time.sleep(1 / cps)
                time.sleep(max(0.0, pause - 1 / cps))
                preparer.stop()
                retrieved = preparer.retrieval_for(text)
                ms, typed = enter(text, retrieved)
                preparer.close()
                times[path].append(ms)
                as_cold.append([r.id for r in retrieved or []] == final)
                # the cold path with the same past emails (retrieved a few words earlier)
                drafter.forget_prompt()
                same[path] &= typed == enter(text, retrieved)[1]
            drafter.forget_prompt()
            enter(text)
            ms, again = enter(text)
            times["regenerate"].append(ms)
            same["regenerate"] &= again == cold
    goals = {"cold": "-", "regenerate": 100.0}
    rows = [[path, median(times[path]), "-" if path == "cold" else same[path],
             goals.get(path, 300.0)] for path in paths]  # fmt: skip
    return rows, sum(as_cold) / len(as_cold)


if __name__ == "__main__":
    main()
