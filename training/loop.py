"""The fine-tuning loop: micro-batches of one email (no padding waste), gradients
accumulated over ``batch_size`` emails, AdamW with linear warm-up and decay, loss averaged
over the email tokens of the batch.

It runs through ``accelerate``: one process on a CPU or a GPU as is, and under ``accelerate
launch`` (DDP, FSDP) each process takes its share of every batch. A checkpoint every
``checkpoint_every`` steps lets a killed run continue (``training.checkpoint``).
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from panza_core.errors import PipelineError
from panza_core.workspace import Workspace
from training import base_model, checkpoint, dataset, device, examples, methods

Progress = Callable[[int, int, float], None]  # (step, steps, loss of the step's batch)


@dataclass(frozen=True)
class TrainMetrics:
    """What a training run measured; stored with the run as JSON (``to_json``).

    Losses are mean cross-entropies per email token (nats); ``losses`` has one per optimizer
    step. ``seconds`` covers loading and encoding too, ``loop_seconds`` the steps only.
    Memory in MiB; ``peak_gpu_mb`` is None without CUDA. ``resumed_at``: the step a
    resumed run continued from (None: started fresh).
    """

    method: str = "lora"
    device: str = "cpu"
    dtype: str = "float32"
    quantize: str = "none"
    processes: int = 1
    lr: float = 0.0
    trainable_params: int = 0
    sparse_values: int = 0  # values trained outside the model (RoSA: its sparse adapters)
    steps: int = 0
    resumed_at: int | None = None
    examples: int = 0
    test_examples: int = 0
    first_loss: float = math.nan
    last_loss: float = math.nan
    losses: list[float] = field(default_factory=list)
    test_loss: float = math.nan
    seconds: float = 0.0
    loop_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    peak_gpu_mb: float | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for the store)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainMetrics:
        """Read a stored run's metrics; keys an older or newer Panza wrote are tolerated."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_gpu_mb() -> float | None:
    """Peak CUDA memory allocated by torch in this process, in MiB; None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


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


def mean_loss(model: Any, batch: list[dataset.Example], device: str) -> float:
    """Mean per-token loss over ``batch`` without gradients (nan if empty)."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for example in batch:
            loss, n = example_loss(model, example, device)
            total, count = total + float(loss), count + n
    return total / count if count else math.nan


def load_base(ws: Workspace, placement: device.Placement) -> tuple[Any, Any]:
    """(model, tokenizer) placed as ``placement`` says: float32 or 4-bit NF4 base weights
    on the device."""
    if placement.quantize == "nf4":
        from training.quantized import load_4bit

        folder = base_model.hf_folder(ws.llm)
        model = load_4bit(
            folder, placement.device, placement.dtype, placement.gradient_checkpointing
        )
        return model, base_model.load_tokenizer(ws.llm)
    model, tokenizer = base_model.load(ws.llm, "float32", placement.device)
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


def run(
    ws: Workspace, account: str, train_pairs: list[examples.Pair],
    test_pairs: list[examples.Pair], folder: Path, key: str, progress: Progress | None,
    resume: bool,
) -> TrainMetrics:  # fmt: skip
    """Train on ``train_pairs`` and save the result into ``folder`` (the run's ``adapter/``).

    ``key``: the run's input hash, written into checkpoints; ``resume`` continues from the
    newest checkpoint in ``folder.parent``. Raises ``PipelineError`` when no example fits
    ``max_length``, ``CheckpointError`` for a checkpoint that does not fit.
    """
    torch = base_model.setup_torch(ws.config.training.threads)
    t = ws.config.training
    placement = device.pick(t)
    run_folder = folder.parent
    found = checkpoint.find(run_folder) if resume else None
    saved = checkpoint.load(found) if found is not None else None
    torch.manual_seed(t.seed)
    started = time.perf_counter()
    accelerator = make_accelerator(placement)
    model, tokenizer = load_base(ws, placement)
    train_set = examples.encode_pairs(ws, account, tokenizer, train_pairs)
    test_set = examples.encode_pairs(ws, account, tokenizer, test_pairs)
    if not train_set:
        raise PipelineError(f"account {account!r}: no training example fits max_length")
    where = accelerator.device

    def mean_example_loss(m: Any, example: dataset.Example) -> Any:
        loss, count = example_loss(m, example, where)
        return loss / max(1, count)

    trainable = methods.prepare(
        t, model, lambda: examples.mask_sample(train_set, t.mask_examples, t.seed),
        mean_example_loss, checkpoint_state=saved.state["model"] if saved else None,
    )  # fmt: skip
    model = accelerator.prepare(trainable.model)
    model.train()
    steps_per_epoch = math.ceil(len(train_set) / t.batch_size)
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
        for index, batch in enumerate(dataset.batches(train_set, t.batch_size, t.seed, epoch)):
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
            if trainable.outside is not None and world > 1:  # not in DDP's module: by hand
                for p in trainable.outside.parameters():
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
    test_loss = mean_loss(model, test_set, where) if test_set else math.nan
    if accelerator.is_main_process:
        methods.save(trainable, folder, tokenizer)
        checkpoint.remove(run_folder)
    accelerator.wait_for_everyone()
    return TrainMetrics(
        method=trainable.method.name, device=placement.device, dtype=placement.dtype,
        quantize=placement.quantize, processes=world, lr=methods.learning_rate(t),
        trainable_params=sum(p.numel() for p in params),
        sparse_values=trainable.outside.size() if trainable.outside is not None else 0,
        steps=step, resumed_at=resumed_at if resume else None, examples=len(train_set),
        test_examples=len(test_set), first_loss=losses[0], last_loss=losses[-1], losses=losses,
        test_loss=test_loss, seconds=seconds, loop_seconds=loop_seconds,
        peak_rss_mb=peak_rss_mb(), peak_gpu_mb=peak_gpu_mb(),
    )  # fmt: skip
