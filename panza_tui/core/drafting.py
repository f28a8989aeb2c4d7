"""Drafting an email: retrieve past emails, build the prompt, stream the model's answer.

The model is the account's active export (a merged GGUF, or the base GGUF plus a GGUF LoRA
adapter), else the base model when it is a GGUF. Prompts come from ``prompting.build`` with
the base model's chat template, exactly as in training.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from panza_tui.core import llama, prompting
from panza_tui.core.config import DraftingConfig
from panza_tui.core.errors import PipelineError
from panza_tui.core.workspace import Workspace


@dataclass
class Retrieved:
    """A past email put in the prompt: store id, cosine similarity, subject, body."""

    id: int
    score: float
    subject: str
    text: str


@dataclass
class Draft:
    """A finished draft. ``timings``: retrieval_ms, ttft_ms, tokens_per_s, tokens, total_ms."""

    draft: str
    retrieved: list[Retrieved] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    model: str = ""

    def to_json(self) -> dict[str, Any]:
        """The ``panza draft --json`` object: draft, retrieved (id, score, subject, text),
        timings."""
        return {
            "draft": self.draft,
            "retrieved": [asdict(r) for r in self.retrieved],
            "timings": self.timings,
        }


@dataclass(frozen=True)
class ModelChoice:
    """What llama.cpp loads for an account: a GGUF and optionally a LoRA adapter GGUF."""

    path: Path
    lora: Path | None
    label: str


def export_choice(ws: Workspace, run: Any) -> ModelChoice:
    """What llama.cpp loads for a finished export run (merged GGUF, or base + adapter GGUF).

    Raises ``PipelineError`` if the run is not a finished export whose file still exists.
    """
    if run.kind != "export" or run.status != "done" or not Path(run.path).exists():
        raise PipelineError(f"run #{run.id} is not a finished export with its GGUF on disk")
    if run.config.get("adapter_only"):
        # A Hugging Face base was converted to GGUF for the adapter; the run names that file.
        base = Path(run.metrics.get("base") or ws.llm.path)
        return ModelChoice(base, Path(run.path), f"{ws.llm.name} + adapter #{run.id}")
    return ModelChoice(Path(run.path), None, f"fine-tuned #{run.id} ({Path(run.path).name})")


def base_choice(ws: Workspace, account: str) -> ModelChoice:
    """The base GGUF; raises ``PipelineError`` for a Hugging Face base (export it first)."""
    if ws.llm.kind == "gguf":
        return ModelChoice(ws.llm.path, None, f"{ws.llm.name} (base)")
    raise PipelineError(
        f"the base model {ws.llm.path} is not a GGUF: run 'panza export --account {account}' first"
    )


def active_export(ws: Workspace, account: str) -> Any:
    """The account's active export run (else its newest), or None if it has none on disk."""
    active = ws.store.account(account)["active_adapter"]
    run = ws.store.run(active) if active else ws.store.latest_run(account, "export")
    if run is not None and run.status == "done" and Path(run.path).exists():
        return run
    return None


def choose_model(ws: Workspace, account: str, use_adapter: bool = True) -> ModelChoice:
    """The account's active export if any (and ``use_adapter``), else the base GGUF.

    Raises ``PipelineError`` when neither exists (a Hugging Face base must be exported first).
    """
    run = active_export(ws, account) if use_adapter else None
    return export_choice(ws, run) if run is not None else base_choice(ws, account)


class Drafter:
    """Loaded models for one account, reused across drafts.

    Drafters whose models are the same GGUF (accounts with adapter-only exports on one base)
    share one loaded model and swap adapters per draft (``llama.SharedModel``). Safe to call
    from several threads: drafts on a model run one at a time (a llama.cpp context is not
    reentrant), so a superseded draft in the TUI finishes its current token first.
    """

    def __init__(
        self, ws: Workspace, account: str, use_adapter: bool = True, use_rag: bool = True,
        choice: ModelChoice | None = None, settings: DraftingConfig | None = None,
    ) -> None:  # fmt: skip
        ws.store.account(account)
        self.ws = ws
        self.account = account
        self.use_rag = use_rag
        self.choice = choice or choose_model(ws, account, use_adapter)
        self.settings = settings or ws.config.drafting
        self._model: llama.SharedModel | None = None

    def load(self) -> llama.SharedModel:
        """Load llama.cpp (and the embedder, for RAG) now rather than on the first draft;
        returns the loaded model."""
        if self._model is None:
            d = self.settings
            self._model = llama.shared(self.choice.path, d.n_ctx, d.threads, d.seed)
        if self.use_rag:
            self.ws.index(self.account)
        return self._model

    def forget_prompt(self) -> None:
        """Drop the evaluated prompt (llama.cpp's KV cache), so the next draft evaluates its
        whole prompt as a new instruction would; benchmarks time first tokens this way."""
        if self._model is not None:
            with self._model.lock:
                self._model.llm.reset()

    def retrieve(self, instruction: str, exclude: Sequence[int] = ()) -> list[Retrieved]:
        """Top-k past emails above the similarity threshold, best first, never ``exclude``."""
        r = self.ws.config.retrieval
        if not self.use_rag or r.top_k <= 0:
            return []
        index = self.ws.index(self.account)
        vector = self.ws.embedder.encode([instruction])[0]
        hits = [h for h in index.search(vector, r.top_k, exclude) if h.score >= r.threshold]
        found = []
        for hit in hits:
            message = self.ws.store.message(hit.id)
            found.append(Retrieved(hit.id, round(hit.score, 4), message.subject, message.text))
        return found

    def prompt(self, instruction: str, retrieved: Sequence[Retrieved]) -> str:
        """The full prompt text for ``instruction`` with ``retrieved`` past emails."""
        preamble = (
            self.ws.store.account(self.account)["user_preamble"]
            or self.ws.config.prompt.user_preamble
        )
        return prompting.build(
            self.ws.chat_template, self.ws.config.prompt.system, instruction,
            [r.text for r in retrieved], preamble,
        )  # fmt: skip

    def draft(
        self, instruction: str, on_token: Callable[[str], None] | None = None,
        exclude: Sequence[int] = (), seed: int | None = None,
        on_retrieved: Callable[[list[Retrieved]], None] | None = None,
    ) -> Draft:  # fmt: skip
        """Write one draft for ``instruction``, streaming pieces of text to ``on_token``.

        ``on_retrieved`` gets the past emails before generation starts; ``exclude`` lists
        store ids never to retrieve (the email being answered or re-drafted). Raises
        ``PipelineError`` for an empty instruction.
        """
        if not instruction.strip():
            raise PipelineError("the instruction is empty: say what the email should do")
        self.load()
        assert self._model is not None
        with self._model.lock:
            return self._draft(instruction, on_token, exclude, seed, on_retrieved)

    def _draft(
        self, instruction: str, on_token: Callable[[str], None] | None, exclude: Sequence[int],
        seed: int | None, on_retrieved: Callable[[list[Retrieved]], None] | None,
    ) -> Draft:  # fmt: skip
        model = self.load()
        start = time.perf_counter()
        retrieved = self.retrieve(instruction, exclude)
        retrieval_ms = (time.perf_counter() - start) * 1000
        if on_retrieved:
            on_retrieved(retrieved)
        d = self.settings
        generation = llama.stream(
            model.use(self.choice.lora), self.prompt(instruction, retrieved),
            max_tokens=d.max_tokens,
            temperature=d.temperature, top_p=d.top_p, repeat_penalty=d.repeat_penalty,
            seed=d.seed if seed is None else seed,
            stop=self.ws.stops, on_token=on_token,
        )  # fmt: skip
        return Draft(
            draft=generation.text.strip(),
            retrieved=retrieved,
            timings={
                "retrieval_ms": round(retrieval_ms, 2),
                "ttft_ms": round(generation.ttft_s * 1000, 2),
                "tokens_per_s": round(generation.tokens_per_s, 2),
                "tokens": generation.tokens,
                "total_ms": round((time.perf_counter() - start) * 1000, 2),
            },
            model=self.choice.label,
        )
