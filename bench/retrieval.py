"""Retrieval latency on 10,000 emails (``--emails``, 100,000 for the scale issue): embed the
query + search the usearch index, p50/p95, through ``panza_core.retrieval`` and through
raw sentence-transformers + usearch; and the index's build, save and load times (a saved
index opens without embedding anything again).

The index holds the real emails of ../shared/data (David, Isabel, the mailing list, Enron),
repeated with their text numbered until there are 10,000.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from common import SHARED, pct, report, temp_home

N = 10_000


def corpus() -> list[str]:
    from sync import extract, files

    texts = []
    for name in ("david", "isabel"):
        path = SHARED / "panza" / f"{name}.jsonl"
        if path.exists():
            texts += [json.loads(line)["email"] for line in path.open()]
    mbox = SHARED / "mbox" / "usrp-users-800.mbox"
    if mbox.exists():
        for _, raw in files.read(mbox):
            result = extract.extract(raw, None)
            if isinstance(result, extract.Message):
                texts.append(result.text)
    if not texts:
        texts = [f"email number {i} about the garden and the drains" for i in range(200)]
    return texts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=N, help="index size")
    parser.add_argument("--distinct", type=int, default=0, help="embed at most this many texts")
    parser.add_argument("--queries", type=int, default=17, help="rounds of the 6 queries")
    parser.add_argument("--name", default="retrieval", help="results: bench/results/NAME.json")
    args = parser.parse_args()
    n = args.emails
    temp_home("retrieval")
    from sentence_transformers import SentenceTransformer
    from usearch.index import Index

    from panza_core import models
    from panza_core.retrieval import EmailIndex, Embedder

    base = corpus()[: args.distinct or None]
    embedder = Embedder(models.resolve_embedding("embedded"))
    started = time.perf_counter()
    vectors = np.concatenate(
        [embedder.encode(base[i : i + 256], batch_size=64) for i in range(0, len(base), 256)]
    )
    embed_s = time.perf_counter() - started
    # repeats share their original's vector plus a little noise: search cost is what matters
    noise = np.random.default_rng(0).normal(0, 0.01, (n, vectors.shape[1])).astype(np.float32)
    full = vectors[np.arange(n) % len(vectors)] + noise
    full /= np.linalg.norm(full, axis=1, keepdims=True)

    path = temp_home("retrieval-index") / "i.usearch"
    started = time.perf_counter()
    ours = EmailIndex(path, embedder.dim)
    ours.add(list(range(1, n + 1)), full, [f"{i:064x}" for i in range(1, n + 1)])
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    ours.save()
    save_s = time.perf_counter() - started
    started = time.perf_counter()
    ours = EmailIndex(path)  # what drafting does on open: no model, no embedding
    load_s = time.perf_counter() - started
    assert len(ours) == n
    raw_index = Index(ndim=full.shape[1], metric="cos", dtype="f32")
    raw_index.add(np.arange(1, n + 1, dtype=np.uint64), full)
    raw_model = SentenceTransformer(str(models.resolve_embedding("embedded")), device="cpu")

    queries = [
        "Ask Tom to reactivate Peter's IT account",
        "Invite the group to dinner on Thursday",
        "Decline the invitation to speak in Paris",
        "Thank the reviewers and attach the revision",
        "Ask about the FPGA image for the X310",
        "Tell the team the meeting moves to 3pm",
    ] * args.queries
    timings = {"panza": [], "raw": []}
    for q in queries:
        start = time.perf_counter()
        ours.search(embedder.encode_query(q), 3, exclude=[1])
        timings["panza"].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        vector = raw_model.encode([q], normalize_embeddings=True)[0]
        raw_index.search(vector, 4)
        timings["raw"].append((time.perf_counter() - start) * 1000)
    rows = [[name, pct(t, 0.5), pct(t, 0.95)] for name, t in timings.items()] + [
        ["ratio p50 (panza / raw)", pct(timings["panza"], 0.5) / pct(timings["raw"], 0.5), "-"]
    ]
    report(
        args.name, ["embed+search", "p50_ms", "p95_ms"], rows,
        {"emails": n, "distinct_texts": len(base), "queries": len(queries),
         "embed_distinct_s": embed_s,
         "embed_per_email_ms": embed_s / len(base) * 1000,
         "index_build_s": build_s, "index_save_s": save_s, "index_load_s": load_s,
         "index_bytes": path.stat().st_size},
    )  # fmt: skip
    print(
        f"index of {n:,}: built in {build_s:.1f} s, saved in {save_s:.2f} s, loaded in "
        f"{load_s:.2f} s; embedding {embed_s / len(base) * 1000:.1f} ms per email"
    )


if __name__ == "__main__":
    main()
