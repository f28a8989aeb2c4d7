"""llama.cpp (``llama-cpp-python``) behind two small functions: load a GGUF, stream a completion.

``OMP_WAIT_POLICY=PASSIVE`` is set before llama_cpp is first imported: with OpenMP's default
busy-waiting, an idle generation thread spins on a core that another process (the TUI, a
second job) needs, and generation stalls.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panza_core import cpu_backend, threads
from panza_core.errors import CheckpointError

# libggml-cpu.so exists only in a build without GGML_BACKEND_DL; otherwise cpu_backend loads
# one libggml-cpu-<variant>.so.
_LIBRARIES = ("libggml-base.so", "libggml-cpu.so", "libggml.so", "libllama.so")
_preloaded = False


def preload() -> None:
    """Load llama.cpp's shared libraries with ``RTLD_DEEPBIND``, before usearch's extension.

    usearch's compiled module carries C++ runtime symbols that, once loaded, take the place
    of llama.cpp's: loading a model then fails in the tokenizer with ``std::bad_cast``.
    Binding llama.cpp's libraries to their own symbols first prevents that, and must happen
    before usearch is imported (``panza_core.retrieval`` calls this). Cheap: no model, no
    Python import of llama_cpp. Does nothing where the libraries are laid out differently.
    """
    global _preloaded
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when libgomp loads
    if _preloaded or not hasattr(os, "RTLD_DEEPBIND"):
        return
    _preloaded = True
    import ctypes

    folder = cpu_backend.library_dir()
    if folder is None:
        return
    for name in _LIBRARIES:
        if (folder / name).exists():
            try:
                ctypes.CDLL(
                    str(folder / name), mode=os.RTLD_LAZY | os.RTLD_DEEPBIND | ctypes.RTLD_GLOBAL
                )
            except OSError:
                return


def import_llama_cpp() -> Any:
    """Import llama_cpp with the environment it needs and the CPU backend for this machine.

    Raises ``BackendError`` if no CPU backend of the installed build can run here.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    preload()
    import logging

    import llama_cpp  # first: it routes ggml's log to the "llama-cpp-python" logger

    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # as Llama(verbose=False)
    cpu_backend.load()

    return llama_cpp


# Tokens the repeat penalty looks back over (llama.cpp's and Ollama's default).
PENALTY_LAST_N = 64


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
            last_n_tokens_size=PENALTY_LAST_N,
            n_threads=count,
            n_threads_batch=count,
            seed=seed,
            logits_all=logits_all,
            verbose=False,
        )
    except (ValueError, RuntimeError) as exc:
        raise CheckpointError(f"llama.cpp could not load {model_path}: {exc}") from exc


def prompt_tokens(llm: Any, prompt: str) -> list[int]:
    """The token ids ``create_completion`` evaluates for ``prompt``: the model's BOS where
    its GGUF asks for one, then the text with control tokens parsed (``special=True``)."""
    cls = llm._model.token_cls()
    bos = cls if cls != -1 else llm.token_bos()
    start = [bos] if llm._model.add_bos_token() and bos != -1 else []
    return start + llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)


# Prompt tokens every completion evaluates itself, however much of its prompt is cached:
# llama.cpp computes a one-token batch on another kernel path than a longer one, and that
# rounding difference changes greedy drafts (measured on the embedded Q4_1 model: a
# regenerate that evaluated only the last prompt token drafted other text in 4 of 4 cases,
# two tokens or more matched the uncached draft in all).
FRESH_TOKENS = 2


def cached_prefix(llm: Any, tokens: Sequence[int]) -> int:
    """How many leading ``tokens`` the context's KV cache already holds."""
    common = 0
    for a, b in zip(llm._input_ids[: llm.n_tokens], tokens, strict=False):
        if a != b:
            break
        common += 1
    return common


PREFILL_CHUNK = 32  # tokens per batch of ``prefill``, between checks of ``keep_going``


def prefill(llm: Any, prompt: str, keep_going: Callable[[], bool] | None = None) -> int:
    """Evaluate ``prompt`` into the context's KV cache now, keeping what is already there
    of it, so that a completion whose prompt starts with it evaluates only the rest
    (llama-cpp-python reuses the longest cached token prefix). Batches of
    ``PREFILL_CHUNK`` tokens, never of one (see ``FRESH_TOKENS``); stops between batches
    once ``keep_going()`` is false. Returns how many tokens were evaluated (0: all cached).
    Use under the model's lock."""
    tokens = prompt_tokens(llm, prompt)
    common = cached_prefix(llm, tokens)
    if common == len(tokens):
        return 0
    common = min(common, max(0, len(tokens) - FRESH_TOKENS))
    llm.n_tokens = common  # ``eval`` drops the KV cache from here on
    start = common
    while start < len(tokens):
        end = min(len(tokens), start + PREFILL_CHUNK)
        if len(tokens) - end < FRESH_TOKENS:  # no short batch left at the end
            end = (
                len(tokens) if len(tokens) - start <= PREFILL_CHUNK else len(tokens) - FRESH_TOKENS
            )
        if keep_going is not None and not keep_going():
            break
        llm.eval(tokens[start:end])
        start = end
    return start - common


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
    top_p: float = 0.9, repeat_penalty: float = 1.0, seed: int = 0, stop: Sequence[str] = (),
    on_token: Callable[[str], None] | None = None,
    logits_processor: Callable[[Any, Any], Any] | None = None,
) -> Generation:  # fmt: skip
    """Complete ``prompt`` (raw text, already templated), calling ``on_token`` per piece.

    ``repeat_penalty`` divides the logits of tokens among the last ``PENALTY_LAST_N``
    (llama.cpp's ``penalty_last_n``; CTRL, arXiv 1909.05858); 1.0 leaves them alone.
    ``logits_processor`` (token ids so far, next-token logits of shape ``(n_vocab,)``) ->
    logits runs before every other sampler (``guidance.FactGuide``)."""
    pieces: list[str] = []
    start = time.perf_counter()
    first: float | None = None
    if llm.n_tokens:  # a cached prompt (regenerate) still evaluates its last FRESH_TOKENS
        tokens = prompt_tokens(llm, prompt)
        if cached_prefix(llm, tokens) > len(tokens) - FRESH_TOKENS:
            llm.n_tokens = max(0, len(tokens) - FRESH_TOKENS)
    for chunk in llm.create_completion(
        prompt, max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed,
        repeat_penalty=repeat_penalty, stop=list(stop), stream=True,
        logits_processor=None if logits_processor is None else [logits_processor],
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


class SharedModel:
    """One loaded GGUF shared by several accounts, each with its own LoRA adapter (OPPU,
    arXiv 2402.04401: one base, one adapter per user).

    llama.cpp sets adapters per context (``llama_set_adapters_lora``), so switching accounts
    costs an adapter swap, not a model load. Adapters are loaded once per file and live as
    long as the model. Use under ``lock``: the context is not reentrant.
    """

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.lock = threading.RLock()
        self._adapters: dict[Path, Any] = {}
        self._current: Path | None = None
        self._vocabulary: Any = None

    def vocabulary(self, ends: Sequence[str] = ()) -> Any:
        """The model's ``guidance.Vocabulary``, found on first use (``ends``: the texts that
        end a draft, read then)."""
        if self._vocabulary is None:
            from panza_core.guidance import Vocabulary

            self._vocabulary = Vocabulary(self.llm, ends)
        return self._vocabulary

    def use(self, lora: Path | None) -> Any:
        """The model with ``lora`` (a GGUF LoRA adapter, or None for the bare base) applied.

        Raises ``CheckpointError`` naming the file if llama.cpp cannot load the adapter.
        """
        if lora == self._current:
            return self.llm
        import ctypes

        llama_cpp = import_llama_cpp()
        ctx = self.llm._ctx.ctx
        if lora is None:
            code = llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            if lora not in self._adapters:
                if not Path(lora).is_file():
                    raise CheckpointError(f"{lora}: no such adapter file")
                adapter = llama_cpp.llama_adapter_lora_init(
                    self.llm._model.model, str(lora).encode()
                )
                if adapter is None:
                    raise CheckpointError(f"llama.cpp could not load the adapter {lora}")
                self._adapters[lora] = adapter
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._adapters[lora])
            code = llama_cpp.llama_set_adapters_lora(ctx, adapters, 1, (ctypes.c_float * 1)(1.0))
        if code:
            raise CheckpointError(f"llama.cpp could not apply the adapter {lora} (code {code})")
        self.llm.reset()  # the cached prompt was computed with the previous adapter
        self._current = lora
        return self.llm


_shared: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def shared(model_path: Path, n_ctx: int, n_threads: int, seed: int) -> SharedModel:
    """The process's ``SharedModel`` for a GGUF and context settings, loaded on first use.

    Held weakly: the model is freed once no drafter uses it any more.
    """
    key = (Path(model_path).resolve(), n_ctx, threads.pick(n_threads), seed)
    with _shared_lock:
        model = _shared.get(key)
        if model is None:
            model = SharedModel(load(model_path, None, n_ctx=n_ctx, n_threads=n_threads, seed=seed))
            _shared[key] = model
        return model
