"""The training data of an account: (instruction, email) pairs from playback, split into
train and test, turned into prompts exactly as drafting builds them.

A sent reply's prompt carries the email it answered (and the conversation before it, within
a budget; ``replies.context_of``), so the model learns how this person answers.

RAFT (Zhang et al., arXiv 2403.10131): a share of the training prompts (``[training]
rag_probability``) carry past emails retrieved for the instruction, so the model learns to
use retrieved context the way drafting gives it.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from typing import Any

from panza_core import prompting, replies
from panza_core.errors import PipelineError
from panza_core.store import Message
from panza_core.workspace import Workspace
from training import dataset, playback, selection

Pair = tuple[Message, str]  # (sent email, the instruction playback wrote for it)


def training_pairs(
    ws: Workspace, account: str, chosen: selection.Selection | None = None
) -> tuple[list[Pair], list[Pair]]:
    """(train, test) pairs of ``account``'s selected emails (``chosen``, else
    ``selection.choose``) that playback has given an instruction, in store id order.
    Raises ``PipelineError`` if none has one yet."""
    chosen = chosen or selection.choose(ws, account)
    train_ids = {m.id for m in chosen.train}
    test_ids = {m.id for m in chosen.test}
    pairs = playback.pairs(ws.store, account, ws.llm, ws.config.playback)
    train = [p for p in pairs if p[0].id in train_ids]
    test = [p for p in pairs if p[0].id in test_ids]
    if not train and not test:
        raise PipelineError(
            f"account {account!r} has no playback pairs yet: run 'panza playback --account "
            f"{account}' first"
        )
    return train, test


def input_hash(ws: Workspace, account: str, train_pairs: list[Pair]) -> str:
    """What a training run depends on: base weights, settings, prompt and data."""
    ignored = ("threads", "checkpoint_every")
    settings = {k: v for k, v in asdict(ws.config.training).items() if k not in ignored}
    settings["retrieval"] = asdict(ws.config.retrieval)
    settings["embedding"] = ws.config.models.embedding
    preamble = ws.store.account(account).user_preamble or ws.config.prompt.user_preamble
    data = sorted(
        (m.content_hash, instruction, thread_of(ws, account, m)) for m, instruction in train_pairs
    )
    return prompting.fingerprint(
        ws.llm.fingerprint, settings, ws.config.prompt.system, preamble, ws.chat_template, data
    )


def thread_of(ws: Workspace, account: str, message: Message) -> list[tuple[str, str]]:
    """The conversation a sent reply answered, as prompt turns ([] for a new email)."""
    return [turn.as_prompt for turn in replies.context_of(ws.store, account, message)]


def retrieved_for(ws: Workspace, account: str, pairs: list[Pair]) -> dict[str, list[str]]:
    """Past emails for the training prompts that get them (RAFT): content hash -> texts.

    Retrieved exactly as at drafting time (by the instruction and, for a reply, the email it
    answers; emails to the same person first; top-k above the threshold), never the email
    itself. Empty if ``rag_probability`` is 0.
    """
    from panza_core.retrieval import search_emails

    t, r = ws.config.training, ws.config.retrieval
    chosen = [
        (m, i) for m, i in pairs if dataset.uses_rag(m.content_hash, t.seed, t.rag_probability)
    ]
    if not chosen or r.top_k <= 0:
        return {}
    ws.update_index(account)
    index = ws.index(account)
    threads = [thread_of(ws, account, m) for m, _ in chosen]
    queries = [replies.query_text(i, th) for (_, i), th in zip(chosen, threads, strict=True)]
    vectors = ws.embedder.encode(queries)
    found = {}
    for (message, _), thread, vector in zip(chosen, threads, vectors, strict=True):
        to = replies.first_address(message.to_addrs) if thread else None
        own = [message.id] if message.id is not None else []
        hits = search_emails(
            ws.store, index, vector, r.top_k, r.threshold, exclude=own, correspondent=to
        )
        found[message.content_hash] = [m.text for _, m in hits]
    return found


def encode_pairs(
    ws: Workspace, account: str, tokenizer: Any, pairs: list[Pair]
) -> list[dataset.Example]:
    """Token ids and loss masks for ``pairs``; prompts exactly as drafting builds them.
    Pairs whose prompt leaves no room for the email within ``max_length`` are dropped."""
    config = ws.config
    preamble = ws.store.account(account).user_preamble or config.prompt.user_preamble
    retrieved = retrieved_for(ws, account, pairs)
    examples = []
    for message, instruction in pairs:
        example = dataset.encode(
            tokenizer, ws.chat_template, config.prompt.system, preamble, message, instruction,
            config.training.max_length, retrieved.get(message.content_hash, ()),
            thread_of(ws, account, message),
        )  # fmt: skip
        if example is not None:
            examples.append(example)
    return examples


def mask_sample(examples: list[dataset.Example], n: int, seed: int) -> list[dataset.Example]:
    """The emails of RoSA's warm-up pass: ``n`` drawn with the run's seed."""
    return random.Random(seed).sample(examples, min(n, len(examples)))
