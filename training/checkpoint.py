"""Training checkpoints: everything needed to continue a killed run where it stopped.

A checkpoint is a folder holding ``state.pt`` (trained tensors, optimizer and scheduler
state, RNG states) and ``progress.json`` (step, losses, the run's input hash). It is written
beside the old one and swapped in by renames, so a kill or a full disk mid-write leaves the
previous checkpoint intact. Resuming replays the same seeded batch order from the saved step
with the saved RNG states, so a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panza_core.errors import CheckpointError

NAME = "checkpoint"


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``step`` optimizer steps done, their ``losses``, and the
    ``state`` dict (``model``, ``optimizer``, ``scheduler``, ``rng``)."""

    step: int
    losses: list[float]
    input_hash: str
    state: dict[str, Any] = field(repr=False)


def save(
    run_folder: Path, step: int, losses: list[float], input_hash: str, model_state: dict,
    optimizer: Any, scheduler: Any,
) -> Path:  # fmt: skip
    """Write the checkpoint of ``run_folder`` atomically; returns its folder.

    Raises ``OSError`` (a full disk, say) with the previous checkpoint left in place.
    """
    import torch

    target = run_folder / NAME
    tmp, old = run_folder / f"{NAME}.tmp", run_folder / f"{NAME}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    state = {
        "model": {name: t.detach().cpu() for name, t in model_state.items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng,
    }
    torch.save(state, tmp / "state.pt")
    progress = {"step": step, "losses": losses, "input_hash": input_hash}
    (tmp / "progress.json").write_text(json.dumps(progress))
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def find(run_folder: Path) -> Path | None:
    """The run's checkpoint folder, or the previous one if a swap was cut short."""
    for name in (NAME, f"{NAME}.old"):
        if (run_folder / name / "progress.json").exists():
            return run_folder / name
    return None


def load(folder: Path, device: str = "cpu") -> Checkpoint:
    """Read a checkpoint folder; raises ``CheckpointError`` naming the file if it is
    truncated, unreadable or not a Panza checkpoint."""
    import torch

    try:
        progress = json.loads((folder / "progress.json").read_text())
        state = torch.load(folder / "state.pt", map_location=device, weights_only=True)
        return Checkpoint(progress["step"], progress["losses"], progress["input_hash"], state)
    except (OSError, ValueError, KeyError, RuntimeError, EOFError) as exc:
        raise CheckpointError(
            f"{folder}: the training checkpoint is unreadable ({type(exc).__name__}: {exc}); "
            "start over with 'panza train --force'"
        ) from exc


def restore_rng(checkpoint: Checkpoint) -> None:
    """Put the RNG states back as they were when the checkpoint was written."""
    import torch

    rng = checkpoint.state["rng"]
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def remove(run_folder: Path) -> None:
    """Delete the run's checkpoints once its result is saved."""
    for name in (NAME, f"{NAME}.old", f"{NAME}.tmp"):
        shutil.rmtree(run_folder / name, ignore_errors=True)
