"""RoSA, Robust Adaptation (Nikdan et al., arXiv 2401.04679): LoRA plus a sparse adapter.

Each adapted linear layer ``y = W x`` becomes ``y = W x + (alpha / r) B A x + S x``, where
``B A`` is PEFT's LoRA and ``S`` is a sparse matrix of the same shape as ``W`` holding
``density`` of its entries (1% by default). The support of ``S`` is picked before training,
as in the paper's gradient-based masks: a short warm-up pass accumulates each weight's
squared gradient (a diagonal Fisher estimate), and the largest entries of every matrix
become its support. Then the LoRA factors and the sparse values train together.

``S`` is kept as flat indices (int64, sorted) plus a value vector, never as a dense mask:
the forward pass multiplies with a sparse COO tensor (``torch.sparse.mm``), which also
gives the gradient of the values only. Its product runs in float32 whatever the base
dtype (bf16 or 4-bit bases on a GPU), so the sparse part behaves the same everywhere.

llama.cpp's LoRA GGUFs carry only ``lora_a``/``lora_b``, so a RoSA model is exported merged:
``merge`` adds ``S`` into the base weights before PEFT merges ``B A``.

``Rosa`` is the ``Method``: LoRA's ``prepare`` plus the supports and the sparse adapters,
which the training loop sees only as the ``Trainable``'s ``outside`` part. Saved as the PEFT
folder plus ``rosa_sparse.safetensors``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from panza_core.config import TrainingConfig
from panza_core.errors import CheckpointError
from training.methods.lora import Lora
from training.methods.protocol import LossFn, MaskBatches, Trainable

SPARSE_FILE = "rosa_sparse.safetensors"
CONFIG_FILE = "rosa_config.json"


def _torch() -> Any:
    import torch

    return torch


def gradient_masks(
    peft_model: Any, batches: Iterable[Any], loss_fn: Callable[[Any, Any], Any], density: float
) -> dict[str, Any]:
    """Sparse supports from accumulated squared gradients: module name -> sorted flat indices.

    Run on a fresh PEFT LoRA model (``B`` is zero, so it computes exactly the base model).
    ``batches`` yields whatever ``loss_fn(model, batch)`` takes; each loss is backpropagated
    once. A weight's gradient is rebuilt from each adapted layer's input and output gradient
    (``g^T x``), so frozen and 4-bit weights work too. Keeps ``max(1, density * out * in)``
    entries per matrix. Raises ``ValueError`` for a density outside (0, 1].
    """
    torch = _torch()
    if not 0 < density <= 1:
        raise ValueError(f"RoSA density must be in (0, 1], got {density}")
    layers = _peft_layers(peft_model)
    scores = {
        name: torch.zeros(
            layer.base_layer.out_features,
            layer.base_layer.in_features,
            dtype=torch.float32,
            device=_device(layer.base_layer),
        )  # fmt: skip
        for name, layer in layers.items()
    }
    handles = []

    def hook(name: str) -> Callable[..., None]:
        def forward(module: Any, args: tuple, output: Any) -> None:
            x = args[0].detach()

            def backward(grad: Any) -> None:
                g = grad.reshape(-1, grad.shape[-1]).float()
                scores[name].add_((g.T @ x.reshape(-1, x.shape[-1]).float()) ** 2)

            if output.requires_grad:
                output.register_hook(backward)

        return forward

    for name, layer in layers.items():
        # The LoRA wrapper's output has the same gradient as the base layer's (B is zero and
        # the two add) and, unlike it, always requires grad, even in the first block.
        handles.append(layer.register_forward_hook(hook(name)))
    try:
        for batch in batches:
            loss = loss_fn(peft_model, batch)
            loss.backward()
            peft_model.zero_grad(set_to_none=True)
    finally:
        for handle in handles:
            handle.remove()
    masks = {}
    for name, score in scores.items():
        keep = max(1, int(density * score.numel()))
        masks[name] = torch.topk(score.flatten(), keep).indices.sort().values.cpu()
    return masks


def _device(module: Any) -> Any:
    return next(module.parameters()).device


class SparseDelta:
    """The sparse part of one layer: ``indices`` (nnz,) int64 flat positions in the
    (out, in) weight, ``values`` (nnz,) float32 trainable, zero at the start."""

    def __init__(self, shape: tuple[int, int], indices: Any, values: Any | None = None) -> None:
        torch = _torch()
        self.shape = (int(shape[0]), int(shape[1]))
        self.indices = indices.to(torch.int64)
        if values is None:
            values = torch.zeros(len(indices), dtype=torch.float32, device=indices.device)
        self.values = torch.nn.Parameter(values.float())
        coords = torch.stack([self.indices // self.shape[1], self.indices % self.shape[1]])
        self._coords = coords

    def to(self, device: Any) -> SparseDelta:
        """Move indices and values to ``device`` (values stay the same Parameter object)."""
        self.indices = self.indices.to(device)
        self._coords = self._coords.to(device)
        self.values.data = self.values.data.to(device)
        return self

    def matrix(self) -> Any:
        """The sparse COO (out, in) tensor; differentiable with respect to ``values``."""
        torch = _torch()
        return torch.sparse_coo_tensor(
            self._coords, self.values, self.shape, is_coalesced=True, check_invariants=False
        )

    def apply(self, x: Any) -> Any:
        """``S x`` for ``x`` of shape (..., in): returns (..., out) in ``x``'s dtype."""
        torch = _torch()
        flat = x.reshape(-1, x.shape[-1]).float()
        y = torch.sparse.mm(self.matrix(), flat.T).T
        return y.reshape(*x.shape[:-1], self.shape[0]).to(x.dtype)

    def dense(self) -> Any:
        """The dense (out, in) float32 delta, for merging."""
        torch = _torch()
        flat = torch.zeros(self.shape[0] * self.shape[1], device=self.values.device)
        return flat.index_put((self.indices,), self.values.detach()).view(self.shape)


def _peft_layers(peft_model: Any) -> dict[str, Any]:
    """PEFT's LoRA-wrapped layers keyed by the base model's module name."""
    from peft.tuners.lora import LoraLayer

    layers = {}
    for name, module in peft_model.named_modules():
        if isinstance(module, LoraLayer):
            layers[name.removeprefix("base_model.model.")] = module
    return layers


class SparseAdapters:
    """The sparse adapters of a PEFT LoRA model, applied through forward hooks: the
    ``protocol.Outside`` part of a RoSA ``Trainable``.

    ``deltas``: module name (as in the base model) -> ``SparseDelta``. ``parameters()`` are
    the sparse values, trained next to the LoRA factors.
    """

    def __init__(self, peft_model: Any, deltas: dict[str, SparseDelta], density: float) -> None:
        layers = _peft_layers(peft_model)
        missing = sorted(set(deltas) - set(layers))
        if missing:
            raise CheckpointError(
                f"RoSA sparse adapter names layers the model lacks: {missing[:3]}"
            )
        self.deltas = deltas
        self.density = density
        self._weights = {name: layers[name].base_layer.weight for name in deltas}
        self._handles = []
        for name, delta in deltas.items():
            layer = layers[name]
            delta.to(_device(layer.base_layer))
            self._handles.append(layer.register_forward_hook(_adding(delta)))

    def parameters(self) -> list[Any]:
        """The trainable sparse values of every layer."""
        return [delta.values for delta in self.deltas.values()]

    def state(self) -> dict[str, Any]:
        """Supports and values by ``<module>.indices`` / ``<module>.values``, for a
        checkpoint."""
        state = {}
        for name, delta in self.deltas.items():
            state[f"{name}.indices"] = delta.indices
            state[f"{name}.values"] = delta.values.detach()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Copy the values of a ``state()`` back in (the supports were chosen from it);
        raises ``CheckpointError`` if a layer's values are missing or another shape."""
        for name, delta in self.deltas.items():
            values = state.get(f"{name}.values")
            if values is None or values.shape != delta.values.shape:
                raise CheckpointError(f"checkpoint RoSA values of {name} do not fit this model")
            with _torch().no_grad():
                delta.values.copy_(values)

    def size(self) -> int:
        """How many sparse values train (the support sizes, summed)."""
        return sum(len(delta.indices) for delta in self.deltas.values())

    def remove(self) -> None:
        """Detach the hooks (the model computes plain LoRA again)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def save(self, folder: Path) -> None:
        """Write ``rosa_sparse.safetensors`` (indices, values) and ``rosa_config.json``."""
        from safetensors.torch import save_file

        tensors = {}
        for name, delta in self.deltas.items():
            tensors[f"{name}.indices"] = delta.indices.cpu().contiguous()
            tensors[f"{name}.values"] = delta.values.detach().cpu().contiguous()
        save_file(tensors, str(folder / SPARSE_FILE))
        shapes = {name: list(delta.shape) for name, delta in self.deltas.items()}
        (folder / CONFIG_FILE).write_text(
            json.dumps({"method": "rosa", "density": self.density, "shapes": shapes}, indent=1)
        )

    def merge(self) -> None:
        """Add every ``S`` into its base weight (in place) and remove the hooks.

        Call before PEFT's ``merge_and_unload``; raises ``CheckpointError`` on a 4-bit base,
        which cannot be merged into (export loads the base in full precision).
        """
        torch = _torch()
        self.remove()
        with torch.no_grad():
            for name, delta in self.deltas.items():
                weight = self._weights[name]
                if weight.dtype not in (torch.float32, torch.float16, torch.bfloat16):
                    raise CheckpointError(f"cannot merge RoSA into {name}: {weight.dtype} base")
                weight.add_(delta.dense().to(weight.device, weight.dtype))


def _adding(delta: SparseDelta) -> Callable[..., Any]:
    def forward(module: Any, args: tuple, output: Any) -> Any:
        return output + delta.apply(args[0])

    return forward


def attach(peft_model: Any, masks: dict[str, Any], density: float) -> SparseAdapters:
    """Add zero-initialised sparse adapters with the given supports to a PEFT LoRA model."""
    layers = _peft_layers(peft_model)
    deltas = {
        name: SparseDelta(
            (layers[name].base_layer.out_features, layers[name].base_layer.in_features), indices
        )
        for name, indices in masks.items()
        if name in layers
    }
    return SparseAdapters(peft_model, deltas, density)


def load(peft_model: Any, folder: Path) -> SparseAdapters:
    """The sparse adapters saved in ``folder``, attached to ``peft_model`` (its LoRA loaded).

    Raises ``CheckpointError`` naming the file if it is missing, unreadable or mismatched.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
        tensors = load_file(str(folder / SPARSE_FILE))
    except (OSError, ValueError, SafetensorError) as exc:
        raise CheckpointError(
            f"{folder}: cannot read the RoSA sparse adapter {SPARSE_FILE} / {CONFIG_FILE} "
            f"({exc}); retrain with 'panza train --force'"
        ) from exc
    deltas = {}
    for name, shape in config["shapes"].items():
        indices, values = tensors.get(f"{name}.indices"), tensors.get(f"{name}.values")
        if indices is None or values is None or indices.shape != values.shape:
            raise CheckpointError(f"{folder / SPARSE_FILE}: {name} is missing or inconsistent")
        if len(indices) and int(indices.max()) >= shape[0] * shape[1]:
            raise CheckpointError(f"{folder / SPARSE_FILE}: {name} has indices out of range")
        deltas[name] = SparseDelta(tuple(shape), indices, values)
    return SparseAdapters(peft_model, deltas, config["density"])


def is_rosa(folder: Path) -> bool:
    """Whether an adapter folder holds a RoSA sparse part next to its LoRA."""
    return (folder / CONFIG_FILE).exists()


class Rosa(Lora):
    """``Method``: LoRA's low-rank factors plus sparse adapters; merged for export
    (llama.cpp adapters carry no sparse part)."""

    name = "rosa"
    gguf_adapter = False

    def prepare(
        self, config: TrainingConfig, model: Any, mask_batches: MaskBatches, loss_fn: LossFn,
        saved: dict[str, Any] | None,
    ) -> Trainable:  # fmt: skip
        """LoRA, then the supports: those of a checkpoint's ``saved`` state (resuming), else
        chosen by ``gradient_masks`` over ``mask_batches()``; then zero sparse adapters."""
        low_rank = super().prepare(config, model, mask_batches, loss_fn, None)
        peft_model = low_rank.model
        supports = {
            key.removesuffix(".indices"): value
            for key, value in (saved or {}).items()
            if key.endswith(".indices")
        }
        if not supports:
            peft_model.train()
            supports = gradient_masks(peft_model, mask_batches(), loss_fn, config.density)
        sparse = attach(peft_model, supports, config.density)
        return Trainable(self, peft_model, low_rank.parameters + sparse.parameters(), sparse)

    def save(self, trainable: Trainable, folder: Path, tokenizer: Any) -> None:
        """The PEFT adapter folder, plus the sparse adapters (``SPARSE_FILE``, ``CONFIG_FILE``)."""
        super().save(trainable, folder, tokenizer)
        if trainable.outside is not None:
            trainable.outside.save(folder)

    def load_merged(self, base_model: Any, folder: Path) -> Any:
        """LoRA and the sparse adapters merged into ``base_model``'s weights (eval mode)."""
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(base_model, folder)
        load(peft_model, folder).merge()
        return peft_model.merge_and_unload().eval()
