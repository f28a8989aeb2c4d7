"""Many completions at once on one llama.cpp context (multi-sequence batches).

Each prompt is a sequence of the same context, so one ``llama_decode`` step computes the
next token of every unfinished sequence. Generating a token is memory-bound on a CPU (the
whole model is read for one matrix-vector product), so a step for eight sequences costs
little more than a step for one. Prompts that start alike (data playback's few-shot
examples) share the KV cells of their common prefix, which is evaluated once
(``llama_memory_seq_cp`` in a unified KV cache copies no data).

This is llama.cpp's own ``batched`` example (examples/batched) and the server's parallel
slots, in Python. Each sequence has a KV stream of its own (``kv_unified = false``), so its
attention sees its own cells only; the shared prefix is evaluated in sequence 0 and copied.
Greedy decoding (temperature 0) picks the argmax, as llama.cpp's greedy sampler does; with
a temperature, top-k/top-p/min-p/temperature are applied here in llama-cpp-python's order
with a numpy generator per prompt, so sampled text differs from a one-at-a-time completion
with the same seed. Even greedy text can differ from a one-at-a-time completion now and
then: llama.cpp's CPU kernels round a batch of several rows differently from a single row
(llama.cpp issue #6583, "Batched inference with greedy sampling yields different
completions"), and a near-tie between two tokens then goes the other way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from panza_tui.core import llama, threads

BATCH_TOKENS = 512  # tokens per llama_decode call while prompts are evaluated


class BatchedCompleter:
    """Completes up to ``n_seq`` prompts at a time on a context of its own over ``llm``'s
    loaded weights (a ``llama_cpp.Llama``; its own context is left alone). Each sequence
    holds ``n_ctx`` tokens (prompt and completion), so the KV cache is ``n_seq * n_ctx``
    tokens: for the embedded 135M model, 8 x 2048 tokens take about 380 MB. Not
    thread-safe; ``close()`` frees the context."""

    def __init__(self, llm: Any, n_seq: int = 8, n_ctx: int = 2048, n_threads: int = 0) -> None:
        L = llama.import_llama_cpp()
        self._L = L
        self.llm = llm
        self.n_seq = max(1, n_seq)
        # The loaded model's own settings (flash attention, KV types...), so that a prompt
        # completes here as it would on ``llm``'s context; then ours.
        params = L.llama_context_params.from_buffer_copy(llm.context_params)
        params.n_ctx = n_ctx * self.n_seq
        params.n_batch = BATCH_TOKENS
        params.n_ubatch = BATCH_TOKENS
        params.n_seq_max = self.n_seq
        params.kv_unified = False
        count = threads.pick(n_threads, reserve=0)  # a batch job: every core
        params.n_threads = params.n_threads_batch = count
        self.ctx = L.llama_init_from_model(llm._model.model, params)
        if not self.ctx:
            raise llama.CheckpointError("llama.cpp could not create a batched context")
        self.n_ctx = L.llama_n_ctx(self.ctx) // self.n_seq  # per sequence
        self.vocab = L.llama_model_get_vocab(llm._model.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self.batch = L.llama_batch_init(BATCH_TOKENS, 0, self.n_seq)
        self.last_tokens: list[list[int]] = []

    def close(self) -> None:
        """Free the context and its batch (the weights belong to ``llm``)."""
        if getattr(self, "ctx", None):
            self._L.llama_batch_free(self.batch)
            self._L.llama_free(self.ctx)
            self.ctx = None

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> BatchedCompleter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def complete(
        self, prompts: Sequence[str], max_tokens: int, stop: Sequence[str] = (),
        temperature: float = 0.0, seed: int = 0,
    ) -> list[str]:  # fmt: skip
        """The completion of each prompt (raw templated text), cut before the first
        ``stop`` string or at an end-of-generation token, at most ``max_tokens`` tokens.
        Raises ``CheckpointError`` if llama.cpp fails to decode (a prompt longer than the
        context, for one)."""
        token_lists = [llama.prompt_tokens(self.llm, p) for p in prompts]
        for tokens in token_lists:
            if len(tokens) + max_tokens > self.n_ctx:
                raise llama.CheckpointError(
                    f"a prompt of {len(tokens)} tokens and {max_tokens} more do not fit the "
                    f"context of {self.n_ctx} tokens"
                )
        out: list[str] = []
        for start in range(0, len(token_lists), self.n_seq):
            wave = token_lists[start : start + self.n_seq]
            out += self._run(wave, max_tokens, stop, temperature, seed + start)
        return out

    def _decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """One llama_decode of (token, position, sequence, wants logits) entries."""
        b = self.batch
        for i, (token, pos, seq, logits) in enumerate(entries):
            b.token[i] = token
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = logits
        b.n_tokens = len(entries)
        code = self._L.llama_decode(self.ctx, b)
        if code != 0:
            raise llama.CheckpointError(
                f"llama.cpp could not decode a batch (code {code}): a prompt may be longer "
                "than the context"
            )

    def _logits(self, index: int) -> Any:
        import numpy as np

        pointer = self._L.llama_get_logits_ith(self.ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()

    def _run(
        self, token_lists: list[list[int]], max_tokens: int, stop: Sequence[str],
        temperature: float, seed: int,
    ) -> list[str]:  # fmt: skip
        import numpy as np

        L = self._L
        memory = L.llama_get_memory(self.ctx)
        L.llama_memory_clear(memory, True)
        n = len(token_lists)
        shared = token_lists[0]
        for tokens in token_lists[1:]:
            shared = _common(shared, tokens)
        # Every prompt evaluates at least two tokens of its own (llama.FRESH_TOKENS): the
        # last prompt token needs its logits, and a one-token tail would take another path.
        shared = shared[: max(0, min(len(t) for t in token_lists) - llama.FRESH_TOKENS)]
        for begin in range(0, len(shared), BATCH_TOKENS):
            part = shared[begin : begin + BATCH_TOKENS]
            self._decode([(t, begin + i, 0, False) for i, t in enumerate(part)])
        for seq in range(1, n):
            if shared:
                L.llama_memory_seq_cp(memory, 0, seq, -1, -1)  # seq 0 holds the prefix only
        logits: dict[int, Any] = {}
        pending = [(tok, pos, seq, pos == len(tokens) - 1)
                   for seq, tokens in enumerate(token_lists)
                   for pos, tok in enumerate(tokens) if pos >= len(shared)]  # fmt: skip
        for begin in range(0, len(pending), BATCH_TOKENS):
            entries = pending[begin : begin + BATCH_TOKENS]
            self._decode(entries)
            for i, (_, _, seq, wants) in enumerate(entries):
                if wants:
                    logits[seq] = self._logits(i)
        rngs = [np.random.default_rng([seed, seq]) for seq in range(n)]
        generated: list[list[int]] = [[] for _ in range(n)]
        texts = [""] * n
        position = [len(tokens) for tokens in token_lists]
        active = set(range(n))
        while active:
            step = []
            for seq in sorted(active):
                token = _pick(logits[seq], temperature, rngs[seq])
                if L.llama_vocab_is_eog(self.vocab, token):
                    active.discard(seq)
                    continue
                generated[seq].append(token)
                text = self.llm.detokenize(generated[seq]).decode("utf-8", errors="ignore")
                cut = min((text.find(s) for s in stop if s and s in text), default=-1)
                if cut >= 0 or len(generated[seq]) >= max_tokens:
                    texts[seq] = text[:cut] if cut >= 0 else text
                    active.discard(seq)
                    continue
                texts[seq] = text
                step.append((token, position[seq], seq, True))
                position[seq] += 1
            if step:
                self._decode(step)
                for i, (_, _, seq, _) in enumerate(step):
                    logits[seq] = self._logits(i)
        L.llama_memory_clear(memory, True)
        self.last_tokens = generated  # per prompt, for tests that compare token by token
        return texts


def _common(a: list[int], b: list[int]) -> list[int]:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


def _pick(logits: Any, temperature: float, rng: Any, top_k: int = 40, top_p: float = 0.9,
          min_p: float = 0.05) -> int:  # fmt: skip
    """Greedy (argmax) at temperature 0; else top-k, top-p, min-p, then temperature."""
    import numpy as np

    if temperature <= 0:
        return int(np.argmax(logits))
    order = np.argsort(-logits)[:top_k]
    chosen = logits[order].astype(np.float64)
    probs = np.exp(chosen - chosen.max())
    probs /= probs.sum()
    keep = int(np.searchsorted(np.cumsum(probs), top_p) + 1)
    order, chosen, probs = order[:keep], chosen[:keep], probs[:keep]
    mask = probs >= min_p * probs[0]
    order, chosen = order[mask], chosen[mask]
    scaled = np.exp((chosen - chosen.max()) / temperature)
    return int(order[rng.choice(len(order), p=scaled / scaled.sum())])
