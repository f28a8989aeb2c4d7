"""Many completions at once on one llama.cpp context (multi-sequence batches).

Each prompt is a sequence of the same context, so one ``llama_decode`` step computes the
next token of every unfinished sequence. Generating a token is memory-bound on a CPU (the
whole model is read for one matrix-vector product), so a step for eight sequences costs
little more than a step for one. A slot whose completion ends takes the next waiting prompt
at the following step (continuous batching), so no slot idles while prompts wait. Prompts
that start alike (data playback's few-shot examples) share their common prefix: it is
evaluated once into a sequence of its own, kept across calls while it still matches, and
copied into each slot (``llama_memory_seq_cp``).

This is llama.cpp's own ``batched`` example (examples/batched) and the server's parallel
slots with continuous batching, in Python. Each sequence has a KV stream of its own
(``kv_unified = false``), so its attention sees its own cells only.
Greedy decoding (temperature 0) picks the argmax, as llama.cpp's greedy sampler does; with
a temperature, top-k/top-p/min-p/temperature are applied here in llama-cpp-python's order
with a numpy generator per prompt, so sampled text differs from a one-at-a-time completion
with the same seed. Even greedy text can differ from a one-at-a-time completion now and
then: llama.cpp's CPU kernels round a batch of several rows differently from a single row
(llama.cpp issue #6583, "Batched inference with greedy sampling yields different
completions"), and a near-tie between two tokens then goes the other way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from panza_core import llama, threads

BATCH_TOKENS = 512  # tokens per llama_decode call while prompts are evaluated


class BatchedCompleter:
    """Completes up to ``n_seq`` prompts at a time on a context of its own over ``llm``'s
    loaded weights (a ``llama_cpp.Llama``; its own context is left alone). Each sequence
    holds ``n_ctx`` tokens (prompt and completion), and one more sequence holds the shared
    prefix, so the KV cache is ``(n_seq + 1) * n_ctx`` tokens: for the embedded 135M model,
    9 x 2048 tokens take about 430 MB. Not thread-safe; ``close()`` frees the context."""

    def __init__(self, llm: Any, n_seq: int = 8, n_ctx: int = 2048, n_threads: int = 0) -> None:
        L = llama.import_llama_cpp()
        self._L = L
        self.llm = llm
        self.n_seq = max(1, n_seq)
        # The loaded model's own settings (flash attention, KV types...), so that a prompt
        # completes here as it would on ``llm``'s context; then ours.
        params = L.llama_context_params.from_buffer_copy(llm.context_params)
        self.prefix_seq = self.n_seq  # the sequence after the slots holds the shared prefix
        params.n_ctx = n_ctx * (self.n_seq + 1)
        params.n_batch = BATCH_TOKENS
        params.n_ubatch = BATCH_TOKENS
        params.n_seq_max = self.n_seq + 1
        params.kv_unified = False
        count = threads.pick(n_threads, reserve=0)  # a batch job: every core
        params.n_threads = params.n_threads_batch = count
        self.ctx = L.llama_init_from_model(llm._model.model, params)
        if not self.ctx:
            raise llama.CheckpointError("llama.cpp could not create a batched context")
        self.n_ctx = L.llama_n_ctx(self.ctx) // (self.n_seq + 1)  # per sequence
        self.vocab = L.llama_model_get_vocab(llm._model.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self.batch = L.llama_batch_init(BATCH_TOKENS, 0, 1)
        self.memory = L.llama_get_memory(self.ctx)
        self.prefix: list[int] = []  # the tokens the prefix sequence holds now
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
        done: Callable[[int, str], None] | None = None,
    ) -> list[str]:  # fmt: skip
        """The completion of each prompt (raw templated text), cut before the first
        ``stop`` string or at an end-of-generation token, at most ``max_tokens`` tokens.
        ``done(i, text)`` is called as soon as prompt ``i``'s completion ends (in the order
        they end). Raises ``CheckpointError`` if llama.cpp fails to decode (a prompt longer
        than the context, for one)."""
        token_lists = [llama.prompt_tokens(self.llm, p) for p in prompts]
        for tokens in token_lists:
            if len(tokens) + max_tokens > self.n_ctx:
                raise llama.CheckpointError(
                    f"a prompt of {len(tokens)} tokens and {max_tokens} more do not fit the "
                    f"context of {self.n_ctx} tokens"
                )
        if not token_lists:
            return []
        shared = token_lists[0]
        for tokens in token_lists[1:]:
            shared = _common(shared, tokens)
        # Every prompt evaluates at least two tokens of its own (llama.FRESH_TOKENS): the
        # last prompt token needs its logits, and a one-token tail would take another path.
        shared = shared[: max(0, min(len(t) for t in token_lists) - llama.FRESH_TOKENS)]
        self._hold(shared)
        return self._run(token_lists, len(shared), max_tokens, stop, temperature, seed, done)

    def _hold(self, prefix: list[int]) -> None:
        """Make the prefix sequence hold exactly ``prefix``, evaluating only what it lacks."""
        kept = len(_common(self.prefix, prefix))
        self._L.llama_memory_seq_rm(self.memory, self.prefix_seq, kept, -1)
        self.prefix = self.prefix[:kept]
        for begin in range(kept, len(prefix), BATCH_TOKENS):
            part = prefix[begin : begin + BATCH_TOKENS]
            self._decode([(t, begin + i, self.prefix_seq, False) for i, t in enumerate(part)])
            self.prefix = prefix[: begin + len(part)]

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
        self, token_lists: list[list[int]], shared: int, max_tokens: int,
        stop: Sequence[str], temperature: float, seed: int,
        done: Callable[[int, str], None] | None,
    ) -> list[str]:  # fmt: skip
        """Continuous batching: each step samples a token for every slot whose logits are
        ready, gives the freed slots the next prompts, then decodes all of it at once."""
        import numpy as np

        L = self._L
        n = len(token_lists)
        waiting = deque(range(n))
        free = list(range(self.n_seq - 1, -1, -1))  # slot 0 is taken first
        slot_of: dict[int, int] = {}  # slot -> prompt
        logits: dict[int, Any] = {}  # prompt -> logits of its next token
        rngs = [np.random.default_rng([seed, i]) for i in range(n)]
        generated: list[list[int]] = [[] for _ in range(n)]
        texts = [""] * n
        position = [len(tokens) for tokens in token_lists]

        def finish(slot: int, i: int) -> None:
            del slot_of[slot]
            free.append(slot)
            L.llama_memory_seq_rm(self.memory, slot, -1, -1)
            if done:
                done(i, texts[i])

        try:
            while waiting or slot_of:
                step: list[tuple[int, int, int, bool]] = []
                owner: list[int] = []  # the prompt of each entry of ``step``
                for slot, i in sorted(slot_of.items()):
                    token = _pick(logits.pop(i), temperature, rngs[i])
                    if L.llama_vocab_is_eog(self.vocab, token):
                        finish(slot, i)
                        continue
                    generated[i].append(token)
                    text = self.llm.detokenize(generated[i]).decode("utf-8", errors="ignore")
                    cut = min((text.find(s) for s in stop if s and s in text), default=-1)
                    texts[i] = text[:cut] if cut >= 0 else text
                    if cut >= 0 or len(generated[i]) >= max_tokens:
                        finish(slot, i)
                        continue
                    step.append((token, position[i], slot, True))
                    owner.append(i)
                    position[i] += 1
                while free and waiting:
                    slot, i = free.pop(), waiting.popleft()
                    slot_of[slot] = i
                    if shared:
                        L.llama_memory_seq_cp(self.memory, self.prefix_seq, slot, -1, -1)
                    tokens = token_lists[i]
                    for pos in range(shared, len(tokens)):
                        step.append((tokens[pos], pos, slot, pos == len(tokens) - 1))
                        owner.append(i)
                for begin in range(0, len(step), BATCH_TOKENS):
                    entries = step[begin : begin + BATCH_TOKENS]
                    self._decode(entries)
                    for k, entry in enumerate(entries):
                        if entry[3]:
                            logits[owner[begin + k]] = self._logits(k)
        finally:
            for slot in range(self.n_seq):
                L.llama_memory_seq_rm(self.memory, slot, -1, -1)
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
