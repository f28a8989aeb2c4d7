"""4-bit NF4 base weights through bitsandbytes (QLoRA, arXiv 2305.14314), imported only here.

bitsandbytes is an optional dependency (``pip install 'panza-tui[gpu]'``): a CPU machine
never loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panza_tui.core.errors import ModelError


def load_4bit(folder: Path, compute_dtype: str, checkpointing: bool) -> Any:
    """The causal LM in ``folder`` with NF4 weights (double quantization) on GPU 0, made
    ready for k-bit training (norms in float32, input gradients on).

    ``compute_dtype``: "bfloat16" or "float32". Raises ``ModelError`` without bitsandbytes
    or CUDA.
    """
    import torch

    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise ModelError(
            "a 4-bit base needs bitsandbytes: pip install 'panza-tui[gpu]' (CUDA only)"
        ) from exc
    if not torch.cuda.is_available():
        raise ModelError("a 4-bit base (bitsandbytes NF4) needs a CUDA GPU")
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=getattr(torch, compute_dtype),
    )  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(
        folder, quantization_config=quantization, device_map={"": 0},
        dtype=getattr(torch, compute_dtype), local_files_only=True,
    )  # fmt: skip
    return prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )  # fmt: skip
