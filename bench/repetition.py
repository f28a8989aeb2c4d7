"""Drafts that loop, and the repeat penalty that stops them (``[drafting]``/``[evaluation]``
``repeat_penalty``), on the two Panza users (../shared/data/panza/{david,isabel}.jsonl).

For each user: import, playback, LoRA training with the product's defaults and a Q8_0
export, as ``panza demo`` does; then greedy fine-tuned + RAG drafts of every held-out email
(as ``panza eval`` makes them) at each repeat penalty. A row gives the share of drafts that
repeat a 6-word sequence (``training.metrics.shape``), their median length in words against
the real emails', ROUGE-L and chrF. Greedy drafts are the same on every run of one host;
another host's float rounding can change a few of them.
"""

from __future__ import annotations

import argparse
import time

from common import SHARED, report, temp_home


def prepare(ws, user: str, playback_limit: int):  # type: ignore[no-untyped-def]
    """Import, play back, train and export ``user``; returns the export's ModelChoice."""
    from panza_core.drafting import export_choice
    from sync.importer import import_path
    from training import export, finetune, playback

    ws.store.add_account(user)
    import_path(ws.store, user, SHARED / "panza" / f"{user}.jsonl")
    ws.update_index(user)
    playback.run(ws.store, user, ws.llm, ws.config.playback, limit=playback_limit)
    trained = finetune.train(ws, user)
    exported = export.export(ws, user, "Q8_0", train_run=trained.run_id)
    return export_choice(ws, ws.store.run(exported.run_id))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", default="david,isabel")
    parser.add_argument("--penalties", default="1.0,1.05,1.1,1.15,1.2,1.3")
    parser.add_argument("--playback-limit", type=int, default=0, help="for a quick smoke run")
    parser.add_argument("--limit", type=int, default=0, help="held-out emails per user (0: all)")
    args = parser.parse_args()
    home = temp_home("repetition")
    from panza_core.workspace import Workspace
    from training import evaluate, metrics

    ws = Workspace()
    rows, results = [], {}
    for user in args.users.split(","):
        choice = prepare(ws, user, args.playback_limit)
        for penalty in (float(p) for p in args.penalties.split(",")):
            pws = ws.with_config(evaluation={"repeat_penalty": penalty, "limit": args.limit})
            test = evaluate.test_set(pws, user)
            started = time.perf_counter()
            drafts = [d.draft for d in evaluate.draft_all(pws, user, choice, True, test)]
            seconds = time.perf_counter() - started
            real = [m.text.strip() for m, _ in test]
            scores = {**metrics.score(drafts, real, ws.embedder), **metrics.shape(drafts)}
            real_shape = metrics.shape(real)
            results[f"{user}@{penalty}"] = {"drafts": drafts, "scores": scores, "real": real_shape}
            rows.append([user, penalty, len(test), scores["repeat6"], scores["median_words"],
                         real_shape["median_words"], scores["rougeL"], scores["chrf"],
                         seconds / len(test)])  # fmt: skip
            print(f"{user} {penalty}: {scores}")
    report(
        "repetition", ["user", "repeat_penalty", "emails", "repeat6 %", "median words",
                       "real median words", "ROUGE-L", "chrF", "s/draft"], rows,
        {"home": str(home), "results": results},
    )  # fmt: skip


if __name__ == "__main__":
    main()
