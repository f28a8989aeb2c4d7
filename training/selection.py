"""Which of an account's emails playback and training use: at most ``[training]
max_emails``, chosen by recency and diversity.

The Panza authors (arXiv 2407.10994) found no gain from more than about a thousand emails,
and a ten-year mailbox holds fifty times that: playing all of it back would take hours and
training on it days. So the newest emails are taken first, skipping near-duplicates (cosine
similarity of their retrieval embeddings at or above ``duplicate_similarity``: the same
"Thanks, received!" sent a hundred times) and, while other emails remain, more than
``max_per_correspondent`` emails to one address or ``max_per_thread`` in one conversation.
Retrieval still indexes every email; only the learning set is chosen.

The held-out (test) side is decided per email by ``dataset.is_test`` (a hash, never its
position), so no email ever moves between training and evaluation as mail arrives. Of the
held-out emails, the evaluation keeps those first in a seeded hash order: new mail displaces
an evaluation email only rarely, so evaluations of successive models stay comparable.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from panza_core import replies
from panza_core.config import TrainingConfig
from panza_core.store import Message, thread_key
from panza_core.workspace import Workspace
from training import dataset


@dataclass(frozen=True)
class Selection:
    """The chosen emails of an account: ``train`` (newest first) and ``test`` (the stable
    evaluation emails), out of ``pool`` own emails; ``skipped`` counts why others were left
    out (``near_duplicate``, ``per_correspondent``, ``per_thread``, ``over_budget``)."""

    train: list[Message]
    test: list[Message]
    pool: int
    skipped: Counter = field(default_factory=Counter)
    emails: list[Message] = field(default_factory=list)  # both sides, newest first

    def summary(self) -> str:
        """One line: how many of how many, and why the rest were left out."""
        line = f"{len(self.train)} training and {len(self.test)} evaluation emails of {self.pool}"
        if self.skipped:
            why = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(self.skipped.items()))
            line += f" (left out: {why})"
        return line


def budget(config: TrainingConfig) -> tuple[int, int]:
    """(training, evaluation) email counts ``max_emails`` allows; (0, 0) for no limit."""
    if config.max_emails <= 0:
        return 0, 0
    test = round(config.max_emails * config.test_fraction)
    return config.max_emails - test, test


def choose(ws: Workspace, account: str) -> Selection:
    """The account's ``Selection`` under ``[training]``. With no more own emails than
    ``max_emails`` (or ``max_emails = 0``) every email is chosen and no model loads;
    otherwise the retrieval index is brought up to date (the embedder loads if emails are
    new to it) and its vectors find the near-duplicates. Raises ``AccountError``."""
    ws.store.account(account)
    config = ws.config.training
    emails = ws.store.messages(account, deleted=True)  # tombstones are still their writing
    held_out = [
        m for m in emails if dataset.is_test(m.content_hash, config.seed, config.test_fraction)
    ]
    training = [
        m for m in emails if not dataset.is_test(m.content_hash, config.seed, config.test_fraction)
    ]
    n_train, n_test = budget(config)
    if not n_train or len(emails) <= config.max_emails:
        return Selection(training, held_out, len(emails), emails=emails)
    ws.update_index(account)
    vectors = ws.index(account).vectors([m.id for m in training])
    skipped: Counter = Counter()
    train = diverse(training, vectors, n_train, config, skipped)
    test = sorted(held_out, key=lambda m: _rank(m, config.seed))[:n_test]
    skipped["over_budget"] += len(held_out) - len(test)
    ids = {m.id for m in [*train, *test]}
    return Selection(train, test, len(emails), skipped, [m for m in emails if m.id in ids])


def diverse(
    emails: Sequence[Message], vectors: Any, n: int, config: TrainingConfig,
    skipped: Counter | None = None,
) -> list[Message]:  # fmt: skip
    """Up to ``n`` of ``emails`` (newest first; ``vectors`` their unit embeddings, (len,
    dim)), in order, none within ``duplicate_similarity`` of one chosen before it. The
    per-correspondent and per-thread caps hold on a first pass; if that leaves fewer than
    ``n``, a second pass fills up with the capped ones, newest first. ``skipped`` gets the
    reasons the others were left out."""
    import numpy as np

    vectors = np.asarray(vectors, dtype=np.float32)
    kept: list[int] = []
    chosen = np.zeros((max(n, 1), vectors.shape[1] if vectors.ndim == 2 else 1), np.float32)
    why: dict[int, str] = {}  # the emails looked at and left out, and why
    people: Counter = Counter()
    threads: Counter = Counter()

    def duplicate(i: int) -> bool:
        if not kept:
            return False
        return float(np.max(chosen[: len(kept)] @ vectors[i])) >= config.duplicate_similarity

    for i, message in enumerate(emails):
        if len(kept) >= n:
            break
        person = replies.first_address(message.to_addrs) or ""
        thread = thread_key(message) or f"#{message.id}"
        if duplicate(i):
            why[i] = "near_duplicate"
        elif person and 0 < config.max_per_correspondent <= people[person]:
            why[i] = "per_correspondent"
        elif 0 < config.max_per_thread <= threads[thread]:
            why[i] = "per_thread"
        else:
            people[person] += 1
            threads[thread] += 1
            chosen[len(kept)] = vectors[i]
            kept.append(i)
    looked = max([*kept, *why], default=-1) + 1
    for i in sorted(why):  # the second pass: capped emails fill what the caps left empty
        if len(kept) >= n:
            break
        if why[i] != "near_duplicate" and not duplicate(i):
            chosen[len(kept)] = vectors[i]
            kept.append(i)
            del why[i]
    if skipped is not None:
        skipped.update(why.values())
        skipped["over_budget"] += len(emails) - looked
    return [emails[i] for i in sorted(kept)]


def _rank(message: Message, seed: int) -> bytes:
    return hashlib.sha256(f"eval:{seed}:{message.content_hash}".encode()).digest()
