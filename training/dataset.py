"""From (instruction, email) pairs to token ids with loss masks, and the seeded test split.

The prompt comes from ``panza_core.prompting.build``, the same function drafting uses, so a
model is trained on exactly the text it later sees. Labels are -100 over the prompt: the
loss is only on the email tokens and the end-of-turn token after them.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from panza_core import prompting
from panza_core.store import Message

IGNORE = -100


def is_test(content_hash: str, seed: int, fraction: float) -> bool:
    """Whether an email is held out for evaluation.

    Decided by a hash of (seed, email), not by position, so the split of an email never
    changes when more mail is synced: about ``fraction`` of all emails land in the test set.
    """
    digest = hashlib.sha256(f"{seed}:{content_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split(
    pairs: Sequence[tuple[Message, str]], seed: int, fraction: float
) -> tuple[list[tuple[Message, str]], list[tuple[Message, str]]]:
    """(train, test) lists of (message, instruction)."""
    train = [p for p in pairs if not is_test(p[0].content_hash, seed, fraction)]
    test = [p for p in pairs if is_test(p[0].content_hash, seed, fraction)]
    return train, test


@dataclass
class Example:
    """One training sequence: ``input_ids`` and ``labels`` of equal length (≤ max_length)."""

    input_ids: list[int]
    labels: list[int]
    content_hash: str


def encode(
    tokenizer: Any, template: str, system: str, preamble: str, message: Message,
    instruction: str, max_length: int, retrieved: Sequence[str] = (),
    thread: Sequence[tuple[str, str]] = (),
) -> Example | None:  # fmt: skip
    """Tokenise one pair, making the prompt fit: retrieved emails go first (from the end),
    then the oldest messages of the ``thread`` a reply answers, the parent last of all.

    Returns None if even the bare prompt leaves fewer than 16 tokens for the email.
    """
    retrieved, thread = list(retrieved), list(thread)
    while True:
        prompt = prompting.build(template, system, instruction, retrieved, preamble, thread)
        prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        room = max_length - len(prompt_ids)
        if room >= 16 or not (retrieved or thread):
            break
        if retrieved:
            retrieved.pop()
        else:
            thread.pop(0)
    if room < 16:
        return None
    target = prompting.neutralise(message.text.strip(), template)
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    target_ids = (target_ids + [tokenizer.eos_token_id])[:room]
    return Example(
        input_ids=prompt_ids + target_ids,
        labels=[IGNORE] * len(prompt_ids) + target_ids,
        content_hash=message.content_hash,
    )


def uses_rag(content_hash: str, seed: int, probability: float) -> bool:
    """Whether an email's training prompt gets retrieved emails (RAFT, Panza section 3).

    Fixed per email and seed, so a rerun builds the same prompts.
    """
    digest = hashlib.sha256(f"rag:{seed}:{content_hash}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < probability


def batches(
    examples: Sequence[Example], batch_size: int, seed: int, epoch: int
) -> list[list[Example]]:
    """Shuffled batches for one epoch (the same order for the same seed and epoch)."""
    order = list(examples)
    random.Random(seed * 1000 + epoch).shuffle(order)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
