"""The three ways to fine-tune: what trains, how it is saved, how export gets it back merged.

- ``lora``: PEFT LoRA (Hu et al., arXiv 2106.09685) on ``target_modules``; saved as a PEFT
  adapter folder.
- ``rosa``: the same LoRA plus a sparse adapter (``training.rosa``); the PEFT folder plus
  ``rosa_sparse.safetensors``.
- ``full``: every weight trains; saved as a whole Hugging Face model folder.

All three save into one folder (the run's ``adapter/``), which ``load_merged`` turns back
into a plain torch model for export.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panza_tui.config import TrainingConfig
from panza_tui.errors import CheckpointError, ConfigError
from training import rosa

METHODS = ("lora", "rosa", "full")
DEFAULT_LR = {"lora": 1e-3, "rosa": 1e-3, "full": 5e-5}
FULL_MARKER = "panza_full.json"


def check(config: TrainingConfig) -> str:
    """The method name, or ``ConfigError`` naming the choices."""
    if config.method not in METHODS:
        raise ConfigError(
            f"[training] method = {config.method!r}; choose one of {', '.join(METHODS)}"
        )
    return config.method


def learning_rate(config: TrainingConfig) -> float:
    """``[training] lr``, or the method's default when it is 0."""
    return config.lr or DEFAULT_LR[check(config)]


def lora_config(config: TrainingConfig) -> Any:
    """The PEFT ``LoraConfig`` from ``[training]`` (rank, alpha, dropout, target modules)."""
    from peft import LoraConfig

    targets: Any = config.target_modules
    if targets != "all-linear":
        targets = [name.strip() for name in targets.split(",") if name.strip()]
    return LoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
        target_modules=targets, task_type="CAUSAL_LM",
    )  # fmt: skip


@dataclass
class Trainable:
    """A model being fine-tuned: ``model`` is what the loop calls, ``parameters`` what the
    optimizer updates; ``sparse`` holds RoSA's sparse adapters."""

    method: str
    model: Any
    sparse: rosa.Rosa | None = None
    parameters: list[Any] = field(default_factory=list)

    def state(self) -> dict[str, Any]:
        """Every trained tensor by name (for checkpoints), RoSA supports included."""
        state = {n: p.detach() for n, p in self.model.named_parameters() if p.requires_grad}
        if self.sparse:
            for name, delta in self.sparse.deltas.items():
                state[f"rosa:{name}.indices"] = delta.indices
                state[f"rosa:{name}.values"] = delta.values.detach()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Copy a ``state()`` back in; raises ``CheckpointError`` on a mismatch."""
        import torch

        own = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in state.items():
                if name.startswith("rosa:"):
                    continue
                if name not in own or own[name].shape != tensor.shape:
                    raise CheckpointError(f"checkpoint tensor {name} does not fit this model")
                own[name].copy_(tensor)
            if self.sparse:
                for name, delta in self.sparse.deltas.items():
                    delta.values.copy_(state[f"rosa:{name}.values"])

    def save(self, folder: Path, tokenizer: Any) -> None:
        """Write the trained result into ``folder`` (created)."""
        folder.mkdir(parents=True, exist_ok=True)
        if self.method == "full":
            self.model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
            (folder / FULL_MARKER).write_text(json.dumps({"method": "full"}))
            return
        self.model.save_pretrained(folder)
        if self.sparse:
            self.sparse.save(folder)


def prepare(
    config: TrainingConfig, model: Any, mask_batches: Callable[[], Iterable[Any]],
    loss_fn: Callable[[Any, Any], Any], supports: dict[str, Any] | None = None,
) -> Trainable:  # fmt: skip
    """Make ``model`` trainable by ``config.method``.

    RoSA picks its sparse supports with ``rosa.gradient_masks`` over ``mask_batches()``
    unless ``supports`` (module name -> flat indices, from a checkpoint) are given.
    """
    method = check(config)
    if method == "full":
        model.requires_grad_(True)
        return Trainable(method, model, None, list(model.parameters()))
    from peft import get_peft_model

    peft_model = get_peft_model(model, lora_config(config))
    sparse = None
    if method == "rosa":
        if supports is None:
            peft_model.train()
            supports = rosa.gradient_masks(peft_model, mask_batches(), loss_fn, config.density)
        sparse = rosa.attach(peft_model, supports, config.density)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    return Trainable(method, peft_model, sparse, params + (sparse.parameters() if sparse else []))


def supports_from(state: dict[str, Any]) -> dict[str, Any] | None:
    """RoSA supports saved in a checkpoint ``state()``, or None if it holds none."""
    found = {
        key.removeprefix("rosa:").removesuffix(".indices"): value
        for key, value in state.items()
        if key.startswith("rosa:") and key.endswith(".indices")
    }
    return found or None


def method_of(folder: Path) -> str:
    """Which method produced a saved folder; ``CheckpointError`` if it holds none."""
    if (folder / FULL_MARKER).exists():
        return "full"
    if (folder / "adapter_config.json").exists():
        return "rosa" if rosa.is_rosa(folder) else "lora"
    raise CheckpointError(f"{folder}: no trained adapter or model here; train again")


def load_merged(base_model: Any, folder: Path) -> Any:
    """The fine-tuned model as plain torch (adapters merged into the weights), eval mode.

    ``base_model``: the base in full precision on the CPU (unused for ``full``, which
    loads its own weights). Raises ``CheckpointError`` naming the folder if it is corrupt.
    """
    method = method_of(folder)
    try:
        if method == "full":
            import torch
            from transformers import AutoModelForCausalLM

            return AutoModelForCausalLM.from_pretrained(
                folder, dtype=torch.float32, local_files_only=True
            ).eval()
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(base_model, folder)
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors, JSON or shape errors: all mean a bad checkpoint
        raise CheckpointError(
            f"{folder}: cannot load the adapter ({method}; {type(exc).__name__}: {exc}); "
            "retrain with 'panza train --force'"
        ) from exc
    if method == "rosa":
        rosa.load(peft_model, folder).merge()
    return peft_model.merge_and_unload().eval()
