"""What a training method is: the ``Method`` protocol, and ``Trainable``, a model being
fine-tuned. Methods are registered in ``training.methods``; the loop never asks which one
it runs: what a method trains outside the wrapped model (RoSA's sparse adapters) it hands
over as the ``Outside`` hooks, which the loop optimizes, reduces and checkpoints alike (as
PEFT's ``LoraVariant`` lets a LoRA variant hook in without the tuner naming it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from panza_core.config import TrainingConfig
from panza_core.errors import CheckpointError

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
        saved: dict[str, Any] | None,
    ) -> Trainable:  # fmt: skip
        """Make ``model`` (a Hugging Face causal LM) trainable. ``saved``: when resuming,
        the ``Outside.state()`` of the checkpoint (what the method chose before training,
        as RoSA's supports), else None to choose anew."""
        ...

    def save(self, trainable: Trainable, folder: Path, tokenizer: Any) -> None:
        """Write the trained result into ``folder`` (created)."""
        ...

    def load_merged(self, base_model: Any, folder: Path) -> Any:
        """The saved result merged into plain torch weights (eval mode). ``base_model``: the
        base in full precision on the CPU. Library errors propagate; the registry turns
        them into ``CheckpointError``."""
        ...


class Outside(Protocol):
    """Tensors a method trains outside the wrapped model (applied by forward hooks, so the
    DDP wrapper does not see them): the loop adds ``parameters()`` to the optimizer,
    averages their gradients across processes, and checkpoints ``state()``."""

    def parameters(self) -> list[Any]:
        """The trained tensors."""
        ...

    def state(self) -> dict[str, Any]:
        """Every tensor needed to rebuild and resume them, by name."""
        ...

    def load_state(self, state: dict[str, Any]) -> None:
        """Copy a ``state()`` back in; ``CheckpointError`` on a mismatch."""
        ...

    def save(self, folder: Path) -> None:
        """Write them beside the method's saved result."""
        ...

    def size(self) -> int:
        """How many values train (recorded with the run)."""
        ...


@dataclass
class Trainable:
    """A model being fine-tuned: ``model`` is what the loop calls, ``parameters`` what the
    optimizer updates (``outside``'s included); ``outside``: what the method trains
    outside ``model``, if anything."""

    method: Method
    model: Any
    parameters: list[Any] = field(default_factory=list)
    outside: Outside | None = None

    def state(self) -> dict[str, Any]:
        """Every trained tensor by name (for checkpoints), the outside part's prefixed with
        the method's name."""
        state = {n: p.detach() for n, p in self.model.named_parameters() if p.requires_grad}
        if self.outside is not None:
            prefix = _prefix(self.method)
            state.update({prefix + k: v for k, v in self.outside.state().items()})
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Copy a ``state()`` back in; raises ``CheckpointError`` on a mismatch."""
        import torch

        own = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in state.items():
                if name.startswith(_prefix(self.method)):
                    continue
                if name not in own or own[name].shape != tensor.shape:
                    raise CheckpointError(f"checkpoint tensor {name} does not fit this model")
                own[name].copy_(tensor)
        if self.outside is not None:
            self.outside.load_state(outside_part(self.method, state) or {})

    def save(self, folder: Path, tokenizer: Any) -> None:
        """Write the trained result into ``folder`` (created), as the method saves it."""
        folder.mkdir(parents=True, exist_ok=True)
        self.method.save(self, folder, tokenizer)


def _prefix(method: Method) -> str:
    return f"{method.name}:"  # "rosa:", as checkpoints have always named RoSA's tensors


def outside_part(method: Method, state: dict[str, Any]) -> dict[str, Any] | None:
    """The ``Outside.state()`` inside a checkpoint's ``Trainable.state()`` (its names
    unprefixed), or None if it holds none."""
    prefix = _prefix(method)
    own = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    return own or None
