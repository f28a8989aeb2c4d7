"""Training runs of an account: start, reuse, resume and record them.

The method (LoRA, RoSA or full, ``training.methods``) decides what trains, ``training.loop``
runs the steps on the pairs from ``training.examples``; this module keeps the books. One
adapter per account (OPPU, arXiv 2402.04401) on a shared base. A run with the same inputs
(``examples.input_hash``) is reused; a killed or failed one continues with ``resume``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from panza_core.errors import PanzaError, PipelineError
from panza_core.store import Run
from panza_core.workspace import Workspace
from training import checkpoint, device, examples, loop, methods, selection
from training.loop import TrainMetrics

SELECTION_FILE = "selection.json"


@dataclass(frozen=True)
class TrainResult:
    """A finished (or reused) training run; ``adapter`` is the saved folder (a PEFT adapter,
    or a whole model for ``full``)."""

    run_id: int
    adapter: Path
    metrics: TrainMetrics
    reused: bool = False


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
    ws: Workspace, account: str, progress: loop.Progress | None = None, force: bool = False,
    resume: bool = False,
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
    chosen = selection.choose(ws, account)
    train_pairs, test_pairs = examples.training_pairs(ws, account, chosen)
    key = examples.input_hash(ws, account, train_pairs)
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
            metrics = TrainMetrics.from_json(previous.metrics)
            return TrainResult(previous.id, Path(previous.path), metrics, reused=True)
        # The base as pinned (a Hub model by commit), so the run says exactly what it tuned.
        settings = {
            **asdict(config), "lr": methods.learning_rate(config),
            "base": ws.llm.source or str(ws.llm.path),
            "selection": {"pool": chosen.pool, "train": len(train_pairs),
                          "test": len(test_pairs), "skipped": dict(chosen.skipped)},
        }  # fmt: skip
        run_id = ws.store.start_run(account, "train", key, settings) if main else 0
        if main:
            record_selection(ws.run_path(account, run_id), train_pairs, test_pairs)
    folder = ws.run_path(account, run_id) / "adapter"
    try:
        metrics = loop.run(ws, account, train_pairs, test_pairs, folder, key, progress, resume)
    except BaseException:
        if main:
            ws.store.finish_run(run_id, "failed")
        raise
    if main:
        ws.store.finish_run(run_id, "done", str(folder), metrics.to_json())
    return TrainResult(run_id, folder, metrics)


def record_selection(folder: Path, train: list, test: list) -> None:
    """Write the content hashes of the emails a run trains and is evaluated on
    (``selection.json`` in the run's folder): what it learned from, after the mail changed."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {"train": [m.content_hash for m, _ in train], "test": [m.content_hash for m, _ in test]}
    (folder / SELECTION_FILE).write_text(json.dumps(data), encoding="utf-8")


def _complete(folder: Path) -> bool:
    try:
        methods.method_of(folder)
    except PanzaError:
        return False
    return True
