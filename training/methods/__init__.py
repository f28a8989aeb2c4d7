"""The registry of training methods: ``[training] method`` -> a ``Method``.

- ``lora``: PEFT LoRA on ``target_modules`` (``lora.py``).
- ``rosa``: LoRA plus a sparse adapter (``rosa.py``, RoSA, arXiv 2401.04679), the sparse
  part handed to the loop as the ``Trainable``'s ``outside`` hooks.
- ``full``: every weight trains (``full.py``).

Adding a method is one module implementing ``training.methods.protocol.Method`` and one entry
in ``METHODS``. Every method saves into one folder (the run's ``adapter/``) with a marker
naming it, which ``load_merged`` turns back into a plain torch model for export.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from panza_core.config import TrainingConfig
from panza_core.errors import CheckpointError, ConfigError
from training.methods.full import Full
from training.methods.lora import Lora, lora_config
from training.methods.protocol import LossFn, MaskBatches, Method, Trainable, outside_part
from training.methods.rosa import Rosa, is_rosa

__all__ = ["METHODS", "Method", "Trainable", "check", "learning_rate", "load_merged",
           "lora_config", "method_of", "prepare", "save"]  # fmt: skip

METHODS: dict[str, Method] = {m.name: m for m in (Lora(), Rosa(), Full())}
MARKER = "panza_method.json"


def check(config: TrainingConfig) -> Method:
    """The configured method, or ``ConfigError`` naming the choices."""
    method = METHODS.get(config.method)
    if method is None:
        raise ConfigError(
            f"[training] method = {config.method!r}; choose one of {', '.join(METHODS)}"
        )
    return method


def learning_rate(config: TrainingConfig) -> float:
    """``[training] lr``, or the method's default when it is 0."""
    return config.lr or check(config).default_lr


def prepare(
    config: TrainingConfig, model: Any, mask_batches: MaskBatches, loss_fn: LossFn,
    checkpoint_state: dict[str, Any] | None = None,
) -> Trainable:  # fmt: skip
    """Make ``model`` trainable by ``config.method``. ``checkpoint_state``: the
    ``Trainable.state()`` of the checkpoint being resumed, whose outside part (RoSA's
    supports) the method reuses instead of choosing anew over ``mask_batches()``.
    """
    method = check(config)
    saved = outside_part(method, checkpoint_state) if checkpoint_state is not None else None
    return method.prepare(config, model, mask_batches, loss_fn, saved)


def save(trainable: Trainable, folder: Path, tokenizer: Any) -> None:
    """Write the trained result into ``folder`` (created), marked with its method."""
    trainable.save(folder, tokenizer)
    (folder / MARKER).write_text(json.dumps({"method": trainable.method.name}))


def method_of(folder: Path) -> str:
    """Which method produced a saved folder; ``CheckpointError`` if it holds none."""
    marker = folder / MARKER
    if marker.exists():
        try:
            name = json.loads(marker.read_text())["method"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{marker}: unreadable ({exc}); train again") from exc
        if name in METHODS:
            return str(name)
        raise CheckpointError(f"{folder}: trained with unknown method {name!r}")
    # Folders saved before the marker existed (Panza 0.1 early runs).
    if (folder / "panza_full.json").exists():
        return "full"
    if (folder / "adapter_config.json").exists():
        return "rosa" if is_rosa(folder) else "lora"
    raise CheckpointError(f"{folder}: no trained adapter or model here; train again")


def load_merged(base_model: Any, folder: Path) -> Any:
    """The fine-tuned model as plain torch (adapters merged into the weights), eval mode.

    ``base_model``: the base in full precision on the CPU (unused for ``full``, which
    loads its own weights). Raises ``CheckpointError`` naming the folder if it is corrupt.
    """
    name = method_of(folder)
    try:
        return METHODS[name].load_merged(base_model, folder)
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors, JSON or shape errors: all mean a bad checkpoint
        raise CheckpointError(
            f"{folder}: cannot load the adapter ({name}; {type(exc).__name__}: {exc}); "
            "retrain with 'panza train --force'"
        ) from exc
