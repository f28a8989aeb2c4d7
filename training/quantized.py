"""4-bit NF4 base weights through bitsandbytes (QLoRA, arXiv 2305.14314), imported only here.

bitsandbytes (>= 0.50, which runs NF4 on the CPU as well as on CUDA) is let in only here
(``core.libraries.allow_4bit``), so a run without ``quantize = "nf4"`` never loads it.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from panza_core import libraries
from panza_core.errors import ModelError


def load_4bit(folder: Path, device: str, compute_dtype: str, checkpointing: bool) -> Any:
    """The causal LM in ``folder`` with NF4 weights (double quantization) on ``device``
    ("cpu" or "cuda", GPU 0), made ready for k-bit training (norms in float32, input
    gradients on).

    ``compute_dtype``: "bfloat16" or "float32". Raises ``ModelError`` when bitsandbytes is
    missing or cannot load.
    """
    import torch

    try:
        libraries.allow_4bit()
    except (ImportError, RuntimeError) as exc:
        raise ModelError(
            f"a 4-bit base needs bitsandbytes >= 0.50 ({exc}); run 'pip install "
            "bitsandbytes' or set [training] quantize = 'none'"
        ) from exc
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=getattr(torch, compute_dtype),
    )  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(
        folder, quantization_config=quantization, device_map={"": 0 if device == "cuda" else "cpu"},
        dtype=getattr(torch, compute_dtype), local_files_only=True,
    )  # fmt: skip
    # peft 0.22 renamed the argument; the old name still works there, with a FutureWarning.
    accepted = inspect.signature(prepare_model_for_kbit_training).parameters
    kwargs = "activation_checkpointing_kwargs"
    if kwargs not in accepted:
        kwargs = "gradient_checkpointing_kwargs"
    return prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=checkpointing, **{kwargs: {"use_reentrant": False}}
    )
