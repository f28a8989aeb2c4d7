"""Fine-tuning an adapter on an account's (instruction, email) pairs with PEFT.

LoRA (Hu et al., arXiv 2106.09685) through ``peft``: rank ``r``, scale ``alpha / r``, on all
linear layers by default. One adapter per account (OPPU, arXiv 2402.04401) on a shared base.
The loop is plain PyTorch: micro-batches of one email (no padding waste on a CPU), gradients
accumulated over ``batch_size`` emails, AdamW with linear warm-up and decay, loss averaged
over the email tokens of the batch.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from panza_tui import prompting
from panza_tui.config import Config
from panza_tui.errors import PipelineError
from panza_tui.workspace import Workspace
from training import base, dataset, playback


@dataclass
class TrainResult:
    """A finished (or reused) training run; ``adapter`` is a PEFT adapter folder."""

    run_id: int
    adapter: Path
    metrics: dict[str, Any]
    reused: bool = False


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def training_pairs(ws: Workspace, account: str) -> tuple[list, list]:
    """(train, test) pairs of ``account``; raises ``PipelineError`` if playback has not run."""
    pairs = playback.pairs(ws.store, account, ws.llm, ws.config.playback)
    if not pairs:
        raise PipelineError(
            f"account {account!r} has no playback pairs yet: run 'panza playback --account "
            f"{account}' first"
        )
    t = ws.config.training
    return dataset.split(pairs, t.seed, t.test_fraction)


def input_hash(ws: Workspace, account: str, train_pairs: list) -> str:
    """What a training run depends on: base weights, settings, prompt and data."""
    settings = {k: v for k, v in asdict(ws.config.training).items() if k != "threads"}
    settings["retrieval"] = asdict(ws.config.retrieval)
    settings["embedding"] = ws.config.models.embedding
    preamble = ws.store.account(account)["user_preamble"] or ws.config.prompt.user_preamble
    data = sorted((m.content_hash, instruction) for m, instruction in train_pairs)
    return prompting.fingerprint(
        ws.llm.fingerprint, settings, ws.config.prompt.system, preamble, ws.chat_template, data
    )


def retrieved_for(ws: Workspace, account: str, pairs: list) -> dict[str, list[str]]:
    """Past emails for the training prompts that get them (RAFT): content hash -> texts.

    Retrieved exactly as at drafting time (by the instruction, top-k above the threshold),
    never the email itself. Empty if ``rag_probability`` is 0.
    """
    t, r = ws.config.training, ws.config.retrieval
    chosen = [
        (m, i) for m, i in pairs if dataset.uses_rag(m.content_hash, t.seed, t.rag_probability)
    ]
    if not chosen or r.top_k <= 0:
        return {}
    ws.update_index(account)
    index = ws.index(account)
    vectors = ws.embedder.encode([instruction for _, instruction in chosen])
    found = {}
    for (message, _), vector in zip(chosen, vectors, strict=True):
        hits = [
            h for h in index.search(vector, r.top_k, exclude=[message.id]) if h.score >= r.threshold
        ]
        found[message.content_hash] = [ws.store.message(h.id).text for h in hits]
    return found


def encode_pairs(ws: Workspace, account: str, tokenizer: Any, pairs: list) -> list:
    """Token ids and loss masks for ``pairs``; prompts exactly as drafting builds them."""
    config = ws.config
    preamble = ws.store.account(account)["user_preamble"] or config.prompt.user_preamble
    retrieved = retrieved_for(ws, account, pairs)
    examples = []
    for message, instruction in pairs:
        example = dataset.encode(
            tokenizer, ws.chat_template, config.prompt.system, preamble, message, instruction,
            config.training.max_length, retrieved.get(message.content_hash, ()),
        )  # fmt: skip
        if example is not None:
            examples.append(example)
    return examples


def example_loss(model: Any, example: dataset.Example, device: str) -> tuple[Any, int]:
    """(sum of token cross-entropies over the email, number of those tokens) for one example.

    Logits are computed only where they are scored (``logits_to_keep``): the prompt is most
    of each sequence, and the 49k-wide output layer is a fifth of the model's work.
    """
    import torch

    n_prompt = next((i for i, x in enumerate(example.labels) if x != dataset.IGNORE), 0)
    keep = len(example.input_ids) - n_prompt + 1  # positions n_prompt-1 .. end predict the email
    ids = torch.tensor([example.input_ids], device=device)
    target = torch.tensor([example.labels[n_prompt:]], device=device)
    logits = model(input_ids=ids, logits_to_keep=keep).logits[:, :-1, :]
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
        ignore_index=dataset.IGNORE, reduction="sum",
    )  # fmt: skip
    return loss, int((target != dataset.IGNORE).sum())


def mean_loss(model: Any, examples: list, device: str) -> float:
    """Mean per-token loss over ``examples`` without gradients (nan if empty)."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for example in examples:
            loss, n = example_loss(model, example, device)
            total, count = total + float(loss), count + n
    return total / count if count else math.nan


def lora_config(config: Config) -> Any:
    """The PEFT ``LoraConfig`` from ``[training]`` (rank, alpha, dropout, target modules)."""
    from peft import LoraConfig

    t = config.training
    targets: Any = t.target_modules
    if targets != "all-linear":
        targets = [name.strip() for name in targets.split(",") if name.strip()]
    return LoraConfig(
        r=t.rank, lora_alpha=t.alpha, lora_dropout=t.dropout, target_modules=targets,
        task_type="CAUSAL_LM",
    )  # fmt: skip


def train(
    ws: Workspace, account: str, progress: Callable[[int, int, float], None] | None = None,
    force: bool = False,
) -> TrainResult:  # fmt: skip
    """Train an adapter for ``account`` and record it as a run.

    Reuses a finished run with identical inputs unless ``force``. ``progress(step, steps,
    loss)`` is called after each optimizer step. Raises ``PipelineError`` if there are no
    playback pairs; a failure marks the run ``failed`` and re-raises.
    """
    ws.store.account(account)  # AccountError naming the known accounts
    config = ws.config.training
    if config.method != "lora":
        raise PipelineError(f"training method {config.method!r} is not available yet; use lora")
    train_pairs, test_pairs = training_pairs(ws, account)
    key = input_hash(ws, account, train_pairs)
    previous = ws.store.find_run(account, "train", key)
    if previous and not force and (Path(previous.path) / "adapter_config.json").exists():
        return TrainResult(previous.id, Path(previous.path), previous.metrics, reused=True)

    run_id = ws.store.start_run(account, "train", key, asdict(config))
    folder = ws.run_path(account, run_id) / "adapter"
    try:
        metrics = _train(ws, account, train_pairs, test_pairs, folder, progress)
    except BaseException:
        ws.store.finish_run(run_id, "failed")
        raise
    ws.store.finish_run(run_id, "done", str(folder), metrics)
    return TrainResult(run_id, folder, metrics)


def _train(
    ws: Workspace, account: str, train_pairs: list, test_pairs: list, folder: Path,
    progress: Callable[[int, int, float], None] | None,
) -> dict[str, Any]:  # fmt: skip
    torch = base.setup_torch(ws.config.training.threads)
    from peft import get_peft_model

    t = ws.config.training
    torch.manual_seed(t.seed)
    started = time.perf_counter()
    model, tokenizer = base.load(ws.llm)
    examples = encode_pairs(ws, account, tokenizer, train_pairs)
    test_examples = encode_pairs(ws, account, tokenizer, test_pairs)
    if not examples:
        raise PipelineError(f"account {account!r}: no training example fits max_length")
    model = get_peft_model(model, lora_config(ws.config))
    model.train()
    steps_per_epoch = math.ceil(len(examples) / t.batch_size)
    total = steps_per_epoch * t.epochs
    if t.max_steps:
        total = min(total, t.max_steps)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=t.lr, weight_decay=0.0)
    warmup = max(1, total // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            (s + 1) / warmup if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
        ),
    )
    losses: list[float] = []
    step = 0
    for epoch in range(t.epochs):
        for batch in dataset.batches(examples, t.batch_size, t.seed, epoch):
            if step >= total:
                break
            n_tokens = sum(sum(1 for x in e.labels[1:] if x != dataset.IGNORE) for e in batch)
            batch_loss = 0.0
            for example in batch:
                loss, _ = example_loss(model, example, "cpu")
                (loss / n_tokens).backward()
                batch_loss += loss.detach().item()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses.append(batch_loss / n_tokens)
            if progress:
                progress(step, total, losses[-1])
    seconds = time.perf_counter() - started
    model.eval()
    test_loss = mean_loss(model, test_examples, "cpu") if test_examples else math.nan
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    return {
        "steps": step,
        "examples": len(examples),
        "test_examples": len(test_examples),
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "losses": losses,
        "test_loss": test_loss,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
    }
