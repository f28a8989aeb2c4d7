"""What a training method is: the ``Method`` protocol, and ``Trainable``, a model being
fine-tuned. Methods are registered in ``training.methods``; the loop never asks which one
it runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from panza_core.config import TrainingConfig
from panza_core.errors import CheckpointError

if TYPE_CHECKING:
    from training.rosa import Rosa

MaskBatches = Callable[[], Iterable[Any]]  # RoSA's warm-up examples, drawn when needed
LossFn = Callable[[Any, Any], Any]  # (model, example) -> mean token loss (a torch scalar)


@runtime_checkable
class Method(Protocol):
    """One way to fine-tune (PEFT's tuner shape: a config, how to wrap a model, how to save
    and merge). ``name`` is the ``[training] method`` value and is recorded with each run."""

    name: str
    default_lr: float  # used when [training] lr is 0
    trains_4bit: bool  # can train on a 4-bit NF4 base (adapters yes, full weights no)
    gguf_adapter: bool  # export can write it as a llama.cpp GGUF LoRA adapter

    def prepare(
        self, config: TrainingConfig, model: Any, mask_batches: MaskBatches, loss_fn: LossFn,
        supports: dict[str, Any] | None,
    ) -> Trainable:  # fmt: skip
        """Make ``model`` (a Hugging Face causal LM) trainable. ``supports``: RoSA's sparse
        supports from a checkpoint (module name -> flat indices), None to choose anew."""
        ...

    def save(self, trainable: Trainable, folder: Path, tokenizer: Any) -> None:
        """Write the trained result into ``folder`` (created)."""
        ...

    def load_merged(self, base_model: Any, folder: Path) -> Any:
        """The saved result merged into plain torch weights (eval mode). ``base_model``: the
        base in full precision on the CPU. Library errors propagate; the registry turns
        them into ``CheckpointError``."""
        ...


@dataclass
class Trainable:
    """A model being fine-tuned: ``model`` is what the loop calls, ``parameters`` what the
    optimizer updates; ``sparse`` holds RoSA's sparse adapters."""

    method: Method
    model: Any
    sparse: Rosa | None = None
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
        """Write the trained result into ``folder`` (created), as the method saves it."""
        folder.mkdir(parents=True, exist_ok=True)
        self.method.save(self, folder, tokenizer)
