"""Hugging Face folder -> GGUF, and PEFT LoRA adapter -> GGUF adapter, by llama.cpp's own
converters (``convert_hf_to_gguf.py``, ``convert_lora_to_gguf.py``).

Why theirs and not a writer of our own: what makes a GGUF right for llama.cpp is a long list
of per-architecture conventions (q/k rows permuted for rotary embeddings in Llama and
Mistral but not in Qwen or Phi-3, Phi-3's fused QKV, Qwen2's biases, Qwen3's q/k norms,
Gemma's +1 norm offset and scaled embeddings, tied output heads, Llama-3.1/3.2 rope scaling
factors) and the pre-tokenizer, which the converter recognises by hashing how the tokenizer
splits a fixed text (``llama-bpe`` for Llama-3, ``qwen2`` for Qwen, ``smollm``...). llama.cpp
keeps that list with llama.cpp. ``make install`` takes the converters from the source of the
same llama-cpp-python release as the runtime (into ``<venv>/share/panza-tui/llama.cpp``), so
what they write is what the loaded llama.cpp reads.

They run in a subprocess: they parse their own arguments, set up logging and ``sys.exit``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from panza_core import libraries
from panza_core.errors import ModelError

ENV_DIR = "PANZA_LLAMA_CONVERTER"
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
    "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja",
    "chat_template.json", "generation_config.json",
)  # fmt: skip
"""Files a model folder carries beside its weights that the converter reads."""


def converter_dir() -> Path:
    """The folder holding llama.cpp's converters: ``$PANZA_LLAMA_CONVERTER`` or
    ``<sys.prefix>/share/panza-tui/llama.cpp``. Raises ``ModelError`` when it is missing."""
    env = os.environ.get(ENV_DIR)
    default = Path(sys.prefix) / "share" / "panza-tui" / "llama.cpp"
    folder = Path(env).expanduser() if env else default
    if not (folder / "convert_hf_to_gguf.py").is_file():
        raise ModelError(
            f"llama.cpp's GGUF converter is not installed (looked in {folder}); run 'make "
            f"install', or set {ENV_DIR} to a llama.cpp source folder"
        )
    return folder


def _reason(log: str) -> str:
    """The line of the converter's output that says why it failed (its last error line)."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("ERROR:") or "Error" in line.split(":", 1)[0]:
            return line.removeprefix("ERROR:hf-to-gguf:").removeprefix("ERROR:lora-to-gguf:")
    return lines[-1] if lines else "no output"


# The converter imports transformers, which imports the Hub-kernels package whenever it is
# installed; as in our own process (core.libraries.guard), it is kept out.
_BOOT = (
    f"import runpy, sys; sys.modules.setdefault({libraries.HUB_KERNELS!r}, None); "
    f"sys.modules.setdefault({libraries.BITSANDBYTES!r}, None); sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _run(script: str, args: list[str], what: str) -> None:
    folder = converter_dir()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1", PYTHONIOENCODING="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", _BOOT, str(folder / script), *args],
        capture_output=True, text=True, env=env, cwd=folder, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        reason = _reason(proc.stderr + proc.stdout)
        raise ModelError(f"{what}: llama.cpp's converter failed: {reason}")


def model_to_gguf(folder: Path, out: Path, outtype: str = "f32", name: str | None = None) -> Path:
    """Convert a Hugging Face model folder (config.json, safetensors, tokenizer files) to a
    GGUF at ``out`` with tensors in ``outtype`` (f32, f16, bf16 or q8_0; 1-D tensors stay
    F32). ``name`` (default: the folder's) becomes ``general.name``, which llama.cpp also
    reads rules off (a name with "phi3" gets Phi-3's token attributes). Written aside and
    renamed, so ``out`` is complete or absent. Raises ``ModelError`` naming the converter's
    reason (e.g. an architecture llama.cpp does not know)."""
    tmp = out.with_name(out.name + ".tmp")
    args = [str(folder), "--outfile", str(tmp), "--outtype", outtype]
    _run("convert_hf_to_gguf.py", args + (["--model-name", name] if name else []),
         f"converting {folder} to GGUF")  # fmt: skip
    tmp.replace(out)
    return out


def lora_to_gguf(adapter: Path, base_folder: Path, out: Path, outtype: str = "f32") -> Path:
    """Convert a PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors)
    to a llama.cpp GGUF adapter for the base model in ``base_folder`` (its config.json gives
    the architecture). llama.cpp scales it by ``lora_alpha / r`` as PEFT does. Raises
    ``ModelError``."""
    tmp = out.with_name(out.name + ".tmp")
    _run("convert_lora_to_gguf.py",
         [str(adapter), "--base", str(base_folder), "--outfile", str(tmp), "--outtype", outtype],
         f"converting the adapter {adapter} to GGUF")  # fmt: skip
    tmp.replace(out)
    return out


def save_for_conversion(model: object, tokenizer_folder: Path, folder: Path) -> Path:
    """Write a (merged) transformers model to ``folder`` as safetensors, with the tokenizer
    files of ``tokenizer_folder`` copied unchanged (re-saving a tokenizer can change it, and
    the converter identifies the pre-tokenizer from exactly these files). Returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)  # type: ignore[attr-defined]
    for name in TOKENIZER_FILES:
        if (tokenizer_folder / name).is_file():
            shutil.copy2(tokenizer_folder / name, folder / name)
    return folder
