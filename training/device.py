"""Where and how a training run computes: device, dtype, 4-bit base, gradient checkpointing.

``[training] device = "auto"`` takes a CUDA GPU when torch sees one and the CPU otherwise.
On a GPU the defaults are Panza's: bf16 compute (where the GPU supports it) and gradient
checkpointing. The CPU computes in float32 without checkpointing, which would only cost time
there. ``quantize = "nf4"`` loads the base in 4-bit NormalFloat through bitsandbytes (QLoRA,
Dettmers et al., arXiv 2305.14314; QRoSA for RoSA) on either: bitsandbytes >= 0.50 has CPU
kernels for ``Linear4bit``, which trade speed for a base a quarter of the size.
"""

from __future__ import annotations

from dataclasses import dataclass

from panza_core.config import TrainingConfig
from panza_core.errors import ModelError
from training import methods


@dataclass(frozen=True)
class Placement:
    """A resolved placement: ``device`` "cpu" or "cuda", ``dtype`` "float32" or "bfloat16"
    (compute dtype), ``quantize`` "none" or "nf4", and whether to checkpoint activations."""

    device: str
    dtype: str
    quantize: str
    gradient_checkpointing: bool


def pick(config: TrainingConfig, cuda: bool | None = None, bf16: bool | None = None) -> Placement:
    """Resolve ``[training] device, precision, quantize, gradient_checkpointing``.

    ``cuda``/``bf16`` say what the machine has (probed with torch when None); the values
    themselves were checked when the config was read (``config.Device`` and the others).
    Raises ``ModelError`` for a request the machine cannot serve (a GPU without CUDA, 4-bit
    with full fine-tuning).
    """
    if cuda is None or bf16 is None:
        import torch

        cuda = torch.cuda.is_available() if cuda is None else cuda
        bf16 = (cuda and torch.cuda.is_bf16_supported()) if bf16 is None else bf16
    if config.device == "cuda" and not cuda:
        raise ModelError("[training] device = 'cuda' but torch sees no CUDA GPU here")
    device = "cuda" if config.device == "cuda" or (config.device == "auto" and cuda) else "cpu"
    if config.quantize == "nf4" and not methods.check(config).trains_4bit:
        raise ModelError(
            f"{config.method} fine-tuning cannot train 4-bit weights; use an adapter "
            "method (lora, rosa) or set [training] quantize = 'none'"
        )
    if config.precision == "auto":
        dtype = "bfloat16" if device == "cuda" and bf16 else "float32"
    else:
        dtype = config.precision
    switch = config.gradient_checkpointing  # its choices are checked when the config is read
    checkpointing = device == "cuda" if switch == "auto" else switch == "on"
    return Placement(device, dtype, config.quantize, checkpointing)
