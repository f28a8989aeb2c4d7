"""Style metrics between drafts and the real emails they stand in for.

BLEU and chrF are corpus-level scores from ``sacrebleu`` (Post, 2018; the standard
tokenisation, so numbers compare with other papers); ROUGE-1/2/L are mean F1 over email
pairs from ``rouge-score`` with Porter stemming (Lin, 2004). All on a 0-100 scale. The style
similarity is the mean cosine between sentence embeddings of each draft and its reference
(0-1), as in the Panza paper's evaluation (arXiv 2407.10994, section 4).

``shape`` catches what those scores reward too little: drafts that loop. It gives the share of
texts that repeat a 6-word sequence (real email almost never does) and the median length.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from typing import Any

METRICS = ("bleu", "chrf", "rouge1", "rouge2", "rougeL", "style_sim")
SHAPE = ("repeat6", "median_words")
FIDELITY = ("fact_recall", "invented", "copied")
_WORD = re.compile(r"\w+(?:'\w+)*")


def repeats(text: str, n: int = 6) -> bool:
    """Whether some sequence of ``n`` words occurs twice in ``text`` (case and punctuation
    ignored; overlapping occurrences count, so a 1-word loop "no no no no no no no" does)."""
    words = _WORD.findall(text.lower())
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words) - n + 1):
        gram = tuple(words[i : i + n])
        if gram in seen:
            return True
        seen.add(gram)
    return False


def shape(texts: Sequence[str]) -> dict[str, float]:
    """``repeat6``: percent of ``texts`` with a repeated 6-word sequence (0-100);
    ``median_words``: their median length in words. Raises ``ValueError`` when empty."""
    if not texts:
        raise ValueError("need at least one text")
    return {
        "repeat6": 100 * sum(repeats(t) for t in texts) / len(texts),
        "median_words": float(statistics.median(len(_WORD.findall(t)) for t in texts)),
    }


def score(drafts: Sequence[str], references: Sequence[str], embedder: Any) -> dict[str, float]:
    """Every metric in ``METRICS`` for aligned lists of drafts and real emails.

    ``embedder.encode(texts)`` must return L2-normalised rows (as ``retrieval.Embedder``
    does). Raises ``ValueError`` if the lists differ in length or are empty.
    """
    import numpy as np
    import sacrebleu
    from rouge_score import rouge_scorer

    if len(drafts) != len(references) or not drafts:
        raise ValueError(f"need equal, non-empty lists (got {len(drafts)}, {len(references)})")
    drafts, references = list(drafts), list(references)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    rouge = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for draft, reference in zip(drafts, references, strict=True):
        for name, value in scorer.score(reference, draft).items():
            rouge[name] += value.fmeasure
    ours = embedder.encode(drafts)
    theirs = embedder.encode(references)
    cosines = np.sum(np.asarray(ours) * np.asarray(theirs), axis=1)
    return {
        "bleu": float(sacrebleu.corpus_bleu(drafts, [references]).score),
        "chrf": float(sacrebleu.corpus_chrf(drafts, [references]).score),
        **{name: 100 * total / len(drafts) for name, total in rouge.items()},
        "style_sim": float(np.mean(cosines)),
    }


def fidelity(
    instructions: Sequence[str],
    drafts: Sequence[str],
    retrieved: Sequence[Sequence[str]] | None = None,
    threads: Sequence[Sequence[str]] | None = None,
    own: Sequence[str] = (),
) -> dict[str, float]:
    """Whether drafts say what was asked (``panza_core.facts.check``), over aligned lists:
    ``fact_recall``, the mean share (0-1) of an instruction's facts its draft carries
    (instructions with no facts left out; 1.0 if none has any); ``invented`` and
    ``copied``, the mean count per draft of facts found in none of the texts it could take
    them from, and of facts only a retrieved past email held. ``retrieved``/``threads``:
    per draft, the past emails in its prompt and the conversation it answered; ``own``:
    the user's preamble and signature. Raises ``ValueError`` for unequal or empty lists."""
    from panza_core.facts import check

    if len(instructions) != len(drafts) or not drafts:
        raise ValueError(f"need equal, non-empty lists (got {len(instructions)}, {len(drafts)})")
    past = retrieved or [()] * len(drafts)
    answered = threads or [()] * len(drafts)
    checks = [
        check(i, d, r, t, own)
        for i, d, r, t in zip(instructions, drafts, past, answered, strict=True)
    ]
    recalls = [c.recall for c in checks if c.recall is not None]
    return {
        "fact_recall": sum(recalls) / len(recalls) if recalls else 1.0,
        "invented": sum(len(c.invented) for c in checks) / len(checks),
        "copied": sum(len(c.copied) for c in checks) / len(checks),
    }
