"""Drafts that say what was asked: fact recall, invented and copied facts
(``panza_core.facts``) beside ROUGE-L, style similarity and repeat6, per user and setting.

For each Panza user (../shared/data/panza/{david,isabel}.jsonl): import, playback, LoRA
training with the product's defaults and a Q8_0 export, as ``panza demo`` does
(``repetition.prepare``); then ``panza eval``'s rows (base, RAG, fine-tuned, fine-tuned +
RAG, replies apart) and the real held-out emails against their instructions, the ceiling
playback leaves. ``--label`` names the run in the JSON; ``--compare OLD.json`` adds the
change of each number against an earlier run of this script (before / after a change to
playback, training or drafting). Greedy drafts: the same on every run of one host.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import report, temp_home
from repetition import prepare

# eval row key -> column of the table and the JSON
COLUMNS = {"fact_recall": "facts", "invented": "invented", "copied": "copied",
           "rougeL": "ROUGE-L", "style_sim": "style sim", "repeat6": "repeat6 %"}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", default="david,isabel")
    parser.add_argument("--playback-limit", type=int, default=0, help="for a quick smoke run")
    parser.add_argument("--limit", type=int, default=0, help="held-out emails per user (0: all)")
    parser.add_argument("--label", default="now", help="what this run measures")
    parser.add_argument("--compare", type=Path, help="an earlier fidelity.json")
    args = parser.parse_args()
    home = temp_home("fidelity")
    from panza_core.workspace import Workspace
    from training import evaluate

    ws = Workspace().with_config(evaluation={"limit": args.limit})
    earlier = {}
    if args.compare:
        old = json.loads(args.compare.read_text())["rows"]
        earlier = {(r["user"], r["setting"]): r for r in old}
    rows = []
    for user in args.users.split(","):
        prepare(ws, user, args.playback_limit)
        export_run = ws.store.latest_run(user, "export")
        assert export_run is not None
        result = evaluate.evaluate(ws, user, export_run=export_run.id, force=True)
        for row in [*result.rows, {"setting": "real emails", **result.real}]:
            values = [round(float(row[k]), 3) if k in row else None for k in COLUMNS]
            before = earlier.get((user, row["setting"]), {})
            change = [
                round(v - before[c], 3) if v is not None and before.get(c) is not None else None
                for c, v in zip(COLUMNS.values(), values, strict=True)
            ]
            rows.append([user, row["setting"], result.n_test, *values,
                         *(change if args.compare else [])])  # fmt: skip
    columns = ["user", "setting", "emails", *COLUMNS.values()]
    if args.compare:
        columns += [f"change {c}" for c in COLUMNS.values()]
    report("fidelity", columns, rows, {"home": str(home), "label": args.label})


if __name__ == "__main__":
    main()
