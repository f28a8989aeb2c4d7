"""llama.cpp (``llama-cpp-python``) behind two small functions: load a GGUF, stream a completion.

``OMP_WAIT_POLICY=PASSIVE`` is set before llama_cpp is first imported: with OpenMP's default
busy-waiting, an idle generation thread spins on a core that another process (the TUI, a
second job) needs, and generation stalls.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panza_tui import threads
from panza_tui.errors import CheckpointError


_LIBRARIES = ("libggml-base.so", "libggml-cpu.so", "libggml.so", "libllama.so")
_preloaded = False


def preload() -> None:
    """Load llama.cpp's shared libraries with ``RTLD_DEEPBIND``, before usearch's extension.

    usearch's compiled module carries C++ runtime symbols that, once loaded, take the place
    of llama.cpp's: loading a model then fails in the tokenizer with ``std::bad_cast``.
    Binding llama.cpp's libraries to their own symbols first prevents that, and must happen
    before usearch is imported (``panza_tui.retrieval`` calls this). Cheap: no model, no
    Python import of llama_cpp. Does nothing where the libraries are laid out differently.
    """
    global _preloaded
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when libgomp loads
    if _preloaded or not hasattr(os, "RTLD_DEEPBIND"):
        return
    _preloaded = True
    import ctypes
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return
    folder = Path(next(iter(spec.submodule_search_locations))) / "lib"
    for name in _LIBRARIES:
        if (folder / name).exists():
            try:
                ctypes.CDLL(
                    str(folder / name), mode=os.RTLD_LAZY | os.RTLD_DEEPBIND | ctypes.RTLD_GLOBAL
                )
            except OSError:
                return


def import_llama_cpp() -> Any:
    """Import llama_cpp with the environment it needs; quiet its logging."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    preload()
    import llama_cpp

    return llama_cpp


def load(
    model_path: Path, lora_path: Path | None = None, n_ctx: int = 2048, n_threads: int = 0,
    seed: int = 0, logits_all: bool = False,
) -> Any:  # fmt: skip
    """A ``llama_cpp.Llama`` for a GGUF file, optionally with a GGUF LoRA adapter applied.

    Raises ``CheckpointError`` naming the file if llama.cpp cannot load it (missing,
    truncated or not a GGUF).
    """
    llama_cpp = import_llama_cpp()
    for path in (model_path, lora_path):
        if path is not None and not Path(path).is_file():
            raise CheckpointError(f"{path}: no such model file")
    count = threads.pick(n_threads)
    try:
        return llama_cpp.Llama(
            model_path=str(model_path),
            lora_path=str(lora_path) if lora_path else None,
            n_ctx=n_ctx,
            n_threads=count,
            n_threads_batch=count,
            seed=seed,
            logits_all=logits_all,
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise CheckpointError(f"llama.cpp could not load {model_path}: {exc}") from exc


@dataclass
class Generation:
    """A finished completion. Times in seconds; ``tokens`` counts the streamed pieces
    (one per token, except where a multi-byte character spans two tokens)."""

    text: str
    tokens: int
    ttft_s: float
    total_s: float

    @property
    def tokens_per_s(self) -> float:
        """Decode speed after the first token (the prompt's cost is in ``ttft_s``)."""
        decode = self.total_s - self.ttft_s
        return (self.tokens - 1) / decode if self.tokens > 1 and decode > 0 else 0.0


def stream(
    llm: Any, prompt: str, *, max_tokens: int = 256, temperature: float = 0.7,
    top_p: float = 0.9, seed: int = 0, stop: Sequence[str] = (),
    on_token: Callable[[str], None] | None = None,
) -> Generation:  # fmt: skip
    """Complete ``prompt`` (raw text, already templated), calling ``on_token`` per piece."""
    pieces: list[str] = []
    start = time.perf_counter()
    first: float | None = None
    for chunk in llm.create_completion(
        prompt, max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed,
        stop=list(stop), stream=True,
    ):  # fmt: skip
        piece = chunk["choices"][0]["text"]
        if not piece:  # the closing chunk, or bytes held back mid-character
            continue
        if first is None:
            first = time.perf_counter()
        pieces.append(piece)
        if on_token:
            on_token(piece)
    end = time.perf_counter()
    return Generation("".join(pieces), len(pieces), (first or end) - start, end - start)
