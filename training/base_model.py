"""Loading the base model and tokenizer for training, with torch on the CPU or a GPU.

A GGUF base is loaded by transformers with ``gguf_file=`` and dequantized
(``GgufConfig(dequantize=True)``, so it can be trained and saved). Dequantizing takes
~20 s for the embedded model, so the result is cached once as safetensors under the Panza
home, keyed by the GGUF's content hash.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from panza_core import locations, threads
from panza_core.errors import ModelError
from panza_core.libraries import quiet_transformers
from panza_core.models import ModelRef


def setup_torch(n_threads: int = 0) -> Any:
    """Import torch using every core for this batch job (or ``n_threads``); returns torch."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(threads.pick(n_threads, reserve=0))
    quiet_transformers()
    return torch


def cache_dir(model: ModelRef) -> Path:
    """Where the dequantized copy of a GGUF base lives."""
    safe = model.fingerprint.replace(":", "-")
    return locations.cache_dir() / "base" / safe


def hf_folder(model: ModelRef) -> Path:
    """A Hugging Face folder for ``model``: the model itself, or the cached dequantized GGUF."""
    if model.kind == "hf":
        return model.path
    folder = cache_dir(model)
    if (folder / "config.json").exists() and (folder / "tokenizer_config.json").exists():
        return folder
    setup_torch()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model.path.parent, gguf_file=model.path.name, local_files_only=True
        )
        lm = AutoModelForCausalLM.from_pretrained(
            model.path.parent, gguf_file=model.path.name, local_files_only=True,
            quantization_config=GgufConfig(dequantize=True), dtype=torch.float32,
        )  # fmt: skip
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"transformers cannot load {model.path} ({exc})") from exc
    # Written aside and renamed, so an interrupted save never leaves a half cache behind.
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    lm.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if folder.exists():
        shutil.rmtree(tmp)  # another process finished first
    else:
        tmp.rename(folder)
    return folder


def load_tokenizer(model: ModelRef) -> Any:
    """The base model's tokenizer (pad token set); raises ``ModelError``.

    Where the model ships a ``tokenizer.json``, that file's own pipeline is used as it is
    (``PreTrainedTokenizerFast``): transformers 5's per-family classes (``LlamaTokenizer``
    for Phi-3, Mistral, Llama-2) rebuild the pre-tokenizer and drop the file's normalizer,
    which changes how leading spaces and runs of spaces split ("  " -> ``▁▁`` instead of
    ``▁▁▁``). sentencepiece and llama.cpp split as the file says (llama.cpp's own Phi-3
    vocabulary test, ``tests/test_tokenizer_parity.py``), and drafting must see the tokens
    training saw.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    folder = hf_folder(model)
    loader = PreTrainedTokenizerFast if (folder / "tokenizer.json").is_file() else AutoTokenizer
    try:
        tokenizer = loader.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the tokenizer from {folder} ({exc})") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load(model: ModelRef, dtype: str = "float32", device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) ready for training on ``device``; raises ``ModelError``."""
    torch = setup_torch()
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(model)
    folder = hf_folder(model)
    try:
        lm = AutoModelForCausalLM.from_pretrained(
            folder, dtype=getattr(torch, dtype), local_files_only=True
        ).to(device)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the base model from {folder} ({exc})") from exc
    return lm, tokenizer
