"""Fine-tuning an account's model on its (instruction, email) pairs.

The method (LoRA, RoSA or full, ``training.methods``) decides what trains; this module runs
the loop. One adapter per account (OPPU, arXiv 2402.04401) on a shared base. Micro-batches
of one email (no padding waste), gradients accumulated over ``batch_size`` emails, AdamW
with linear warm-up and decay, loss averaged over the email tokens of the batch.

The loop runs through ``accelerate``: one process on a CPU or a GPU as is, and under
``accelerate launch`` (DDP, FSDP) each process takes its share of every batch. Checkpoints
every ``checkpoint_every`` steps let ``panza train --resume`` continue a killed run.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from panza_tui import prompting
from panza_tui.errors import PanzaError, PipelineError
from panza_tui.store import Run
from panza_tui.workspace import Workspace
from training import base, checkpoint, dataset, device, methods, playback


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
    ignored = ("threads", "checkpoint_every")
    settings = {k: v for k, v in asdict(ws.config.training).items() if k not in ignored}
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


def resumable(ws: Workspace, account: str) -> Run | None:
    """The newest unfinished (killed or failed) training run of ``account`` that left a
    checkpoint, or None."""
    for run in ws.store.runs(account, "train"):
        if run.status == "done":
            return None
        if checkpoint.find(ws.run_path(account, run.id)):
            return run
    return None


def train(
    ws: Workspace, account: str, progress: Callable[[int, int, float], None] | None = None,
    force: bool = False, resume: bool = False,
) -> TrainResult:  # fmt: skip
    """Train ``account``'s adapter (or full model) and record it as a run.

    Reuses a finished run with identical inputs unless ``force``. ``resume`` continues the
    newest killed or failed run from its checkpoint. ``progress(step, steps, loss)`` after
    each optimizer step. Raises ``PipelineError`` without playback pairs, or when there is
    nothing to resume or the data changed since; ``ConfigError``/``ModelError`` for a method
    or placement this machine cannot run. A failure marks the run ``failed`` (its checkpoint
    stays for ``--resume``) and re-raises.
    """
    ws.store.account(account)  # AccountError naming the known accounts
    config = ws.config.training
    methods.check(config)
    device.pick(config)  # fail before loading anything
    train_pairs, test_pairs = training_pairs(ws, account)
    key = input_hash(ws, account, train_pairs)
    # Under `accelerate launch` every process runs this; only the first records the run.
    main = int(os.environ.get("RANK", "0")) == 0
    if resume:
        run = resumable(ws, account)
        if run is None:
            raise PipelineError(
                f"account {account!r} has no interrupted training run to resume: run "
                f"'panza train --account {account}'"
            )
        if run.input_hash != key:
            raise PipelineError(
                f"run #{run.id} was started with other data or settings (new mail, or a "
                "changed [training] option); start a new run with 'panza train'"
            )
        run_id = run.id
        if main:
            ws.store.reopen_run(run_id)
    else:
        previous = ws.store.find_run(account, "train", key)
        if previous and not force and _complete(Path(previous.path)):
            return TrainResult(previous.id, Path(previous.path), previous.metrics, reused=True)
        settings = {**asdict(config), "lr": methods.learning_rate(config)}
        run_id = ws.store.start_run(account, "train", key, settings) if main else 0
    folder = ws.run_path(account, run_id) / "adapter"
    try:
        metrics = _train(ws, account, train_pairs, test_pairs, folder, key, progress, resume)
    except BaseException:
        if main:
            ws.store.finish_run(run_id, "failed")
        raise
    if not main:
        return TrainResult(run_id, folder, metrics)
    ws.store.finish_run(run_id, "done", str(folder), metrics)
    return TrainResult(run_id, folder, metrics)


def _complete(folder: Path) -> bool:
    try:
        methods.method_of(folder)
    except PanzaError:
        return False
    return True


def mask_sample(examples: list, n: int, seed: int) -> list:
    """The emails of RoSA's warm-up pass: ``n`` drawn with the run's seed."""
    return random.Random(seed).sample(examples, min(n, len(examples)))


def load_base(ws: Workspace, placement: device.Placement) -> tuple[Any, Any]:
    """(model, tokenizer) placed as ``placement`` says: float32 weights on the device, or
    4-bit NF4 weights on the GPU."""
    if placement.quantize == "nf4":
        from training.quantized import load_4bit

        folder = base.hf_folder(ws.llm)
        model = load_4bit(folder, placement.dtype, placement.gradient_checkpointing)
        return model, base.load_tokenizer(ws.llm)
    model, tokenizer = base.load(ws.llm, "float32", placement.device)
    if placement.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    return model, tokenizer


def make_accelerator(placement: device.Placement) -> Any:
    """An ``accelerate.Accelerator`` for ``placement`` (bf16 autocast where asked).

    Under ``accelerate launch`` it joins the launched processes (DDP, FSDP, as configured
    with ``accelerate config``). In a single process its state is reset first: accelerate
    keeps one process-wide state and refuses a second run with other settings (a CPU run
    after a GPU one in the same TUI session or test run).
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(
        cpu=placement.device == "cpu",
        mixed_precision="bf16" if placement.dtype == "bfloat16" else "no",
    )


def _train(
    ws: Workspace, account: str, train_pairs: list, test_pairs: list, folder: Path, key: str,
    progress: Callable[[int, int, float], None] | None, resume: bool,
) -> dict[str, Any]:  # fmt: skip
    torch = base.setup_torch(ws.config.training.threads)
    t = ws.config.training
    placement = device.pick(t)
    run_folder = folder.parent
    saved = checkpoint.load(checkpoint.find(run_folder)) if resume else None
    torch.manual_seed(t.seed)
    started = time.perf_counter()
    accelerator = make_accelerator(placement)
    model, tokenizer = load_base(ws, placement)
    examples = encode_pairs(ws, account, tokenizer, train_pairs)
    test_examples = encode_pairs(ws, account, tokenizer, test_pairs)
    if not examples:
        raise PipelineError(f"account {account!r}: no training example fits max_length")
    where = accelerator.device

    def mean_example_loss(m: Any, example: dataset.Example) -> Any:
        loss, count = example_loss(m, example, where)
        return loss / max(1, count)

    trainable = methods.prepare(
        t, model, lambda: mask_sample(examples, t.mask_examples, t.seed), mean_example_loss,
        supports=methods.supports_from(saved.state["model"]) if saved else None,
    )  # fmt: skip
    model = accelerator.prepare(trainable.model)
    model.train()
    steps_per_epoch = math.ceil(len(examples) / t.batch_size)
    total = steps_per_epoch * t.epochs
    if t.max_steps:
        total = min(total, t.max_steps)
    params = trainable.parameters
    optimizer = torch.optim.AdamW(params, lr=methods.learning_rate(t), weight_decay=0.0)
    warmup = max(1, total // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: (
            (s + 1) / warmup if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
        ),
    )
    losses: list[float] = []
    step = 0
    if saved:
        trainable.load_state(saved.state["model"])
        optimizer.load_state_dict(saved.state["optimizer"])
        schedule.load_state_dict(saved.state["scheduler"])
        checkpoint.restore_rng(saved)
        step, losses = saved.step, list(saved.losses)
    resumed_at = step
    loop_started = time.perf_counter()
    world, rank = accelerator.num_processes, accelerator.process_index
    for epoch in range(t.epochs):
        for index, batch in enumerate(dataset.batches(examples, t.batch_size, t.seed, epoch)):
            if epoch * steps_per_epoch + index < resumed_at:
                continue  # done before the checkpoint; the seeded order repeats exactly
            if step >= total:
                break
            n_tokens = sum(sum(1 for x in e.labels[1:] if x != dataset.IGNORE) for e in batch)
            mine = batch[rank::world]
            batch_loss = torch.zeros((), device=where)
            for i, example in enumerate(mine):
                # DDP all-reduces on the last micro-batch only; the sum over processes of
                # world * loss / n_tokens, averaged by DDP, is the batch's mean token loss.
                quiet = i < len(mine) - 1
                with accelerator.no_sync(model) if quiet else contextlib.nullcontext():
                    loss, _ = example_loss(model, example, where)
                    accelerator.backward(loss * world / n_tokens)
                batch_loss += loss.detach()
            if trainable.sparse and world > 1:  # outside the DDP module: reduce by hand
                for p in trainable.sparse.parameters():
                    p.grad = accelerator.reduce(p.grad, reduction="mean")
            accelerator.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses.append(float(accelerator.reduce(batch_loss, reduction="sum")) / n_tokens)
            if progress:
                progress(step, total, losses[-1])
            if t.checkpoint_every and step % t.checkpoint_every == 0 and step < total:
                if accelerator.is_main_process:
                    checkpoint.save(run_folder, step, losses, key, trainable.state(),
                                    optimizer, schedule)  # fmt: skip
                accelerator.wait_for_everyone()
    seconds = time.perf_counter() - started
    loop_seconds = time.perf_counter() - loop_started
    model.eval()
    test_loss = mean_loss(model, test_examples, where) if test_examples else math.nan
    if accelerator.is_main_process:
        trainable.save(folder, tokenizer)
        checkpoint.remove(run_folder)
    accelerator.wait_for_everyone()
    sparse_values = (
        sum(len(d.indices) for d in trainable.sparse.deltas.values()) if trainable.sparse else 0
    )
    return {
        "method": trainable.method,
        "device": placement.device,
        "dtype": placement.dtype,
        "quantize": placement.quantize,
        "processes": world,
        "lr": methods.learning_rate(t),
        "trainable_params": sum(p.numel() for p in params),
        "sparse_values": sparse_values,
        "steps": step,
        "resumed_at": resumed_at if resume else None,
        "examples": len(examples),
        "test_examples": len(test_examples),
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "losses": losses,
        "test_loss": test_loss,
        "seconds": seconds,
        "loop_seconds": loop_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "peak_gpu_mb": _peak_gpu_mb(),
    }


def _peak_gpu_mb() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20
