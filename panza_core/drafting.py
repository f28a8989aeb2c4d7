"""Drafting an email: retrieve past emails, build the prompt, stream the model's answer.

The model is the account's active export (a merged GGUF, or the base GGUF plus a GGUF LoRA
adapter), else the base model when it is a GGUF. Prompts come from ``prompting.build`` with
the base model's chat template, exactly as in training.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from panza_core import llama, prompting, replies
from panza_core.config import DraftingConfig
from panza_core.errors import PipelineError
from panza_core.store import Message
from panza_core.workspace import Workspace

SUBJECT_SYSTEM = "You write short, plain email subject lines."
SUBJECT_ASK = (
    "Write the subject line for this email: at most eight words, no quotes. Answer with the "
    "subject line only.\n\n{email}"
)
_MARK = "\x00PANZA-INSTRUCTION\x00"  # where the instruction goes, to cut the prompt there
_SUBJECT_LABEL = re.compile(r"^\s*\**\s*(subject( line)?)\s*:?\s*\**\s*", re.I)


_GREETING = re.compile(r"^(hi|hello|hey|dear|good (morning|afternoon|evening))\b", re.I)


def clean_subject(raw: str, instruction: str = "") -> str:
    """A subject line from the model's answer: first line, labels and quotes dropped, at
    most 12 words, not a greeting (a fine-tuned model may start the email instead); else
    the instruction (its first ten words); else ""."""
    line = next((part for part in raw.strip().splitlines() if part.strip()), "")
    line = _SUBJECT_LABEL.sub("", line).strip().strip("\"'`*").strip()
    words = line.split()
    if 1 <= len(words) <= 12 and not _GREETING.match(line) and not line.endswith(","):
        return line
    words = instruction.split()[:10]
    return " ".join(words).rstrip(".,;:") if words else ""


@dataclass
class Retrieved:
    """A past email put in the prompt: store id, cosine similarity, subject, body."""

    id: int
    score: float
    subject: str
    text: str


@dataclass
class Draft:
    """A finished draft. ``timings``: retrieval_ms, ttft_ms, tokens_per_s, tokens, total_ms.
    ``headers``: for a reply, its To/Cc/Subject/In-Reply-To/References; ``thread``: the
    (author, text) turns of the conversation that was in the prompt."""

    draft: str
    retrieved: list[Retrieved] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    model: str = ""
    headers: replies.ReplyHeaders | None = None
    thread: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``panza draft --json`` object: draft, retrieved (id, score, subject, text),
        timings, and for a reply ``headers`` and ``thread`` (author, text)."""
        data: dict[str, Any] = {
            "draft": self.draft,
            "retrieved": [asdict(r) for r in self.retrieved],
            "timings": self.timings,
        }
        if self.headers is not None:
            data["headers"] = asdict(self.headers)
            data["thread"] = [{"author": a, "text": t} for a, t in self.thread]
        return data


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
    active = ws.store.account(account).active_export
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
        self._last_prompt = ""  # the latest draft's, kept in the KV cache for regenerate
        # (own, received) email counts and the address book built from them
        self._book: tuple[tuple[int, int], list[tuple[str, str, int]]] | None = None

    def load(self) -> llama.SharedModel:
        """Load llama.cpp (and, for RAG, the retrieval index, reconciled with the store) now
        rather than on the first draft; returns the loaded model."""
        if self._model is None:
            d = self.settings
            self._model = llama.shared(self.choice.path, d.n_ctx, d.threads, d.seed)
        if self.use_rag:  # reconciled on open: another process may have changed the store
            self.ws.update_index(self.account)
        return self._model

    def forget_prompt(self) -> None:
        """Drop the evaluated prompt (llama.cpp's KV cache), so the next draft evaluates its
        whole prompt as a new instruction would; benchmarks time first tokens this way."""
        if self._model is not None:
            with self._model.lock:
                self._model.llm.reset()

    def retrieve(
        self, instruction: str, exclude: Sequence[int] = (),
        thread: Sequence[tuple[str, str]] = (), correspondent: str | None = None,
    ) -> list[Retrieved]:  # fmt: skip
        """Top-k past emails above the similarity threshold, best first, never ``exclude``.

        For a reply (its ``thread`` turns), the query adds the email being answered, and
        emails sent to ``correspondent`` come first (``retrieval.search_emails``).
        """
        from panza_core.retrieval import search_emails

        r = self.ws.config.retrieval
        if not self.use_rag or r.top_k <= 0:
            return []
        index = self.ws.index(self.account)
        vector = self.ws.embedder.encode_query(replies.query_text(instruction, list(thread)))
        hits = search_emails(
            self.ws.store, index, vector, r.top_k, r.threshold, exclude, correspondent
        )
        return [Retrieved(h.id, round(h.score, 4), m.subject, m.text) for h, m in hits]

    def thread(self, reply_to: Message) -> list[tuple[str, str]]:
        """The conversation a reply to ``reply_to`` answers, as prompt turns (author, text)."""
        turns = replies.thread_before(self.ws.store, self.account, reply_to)
        return [turn.as_prompt for turn in turns]

    def suggest_to(self, instruction: str) -> list[str]:
        """Past correspondents the instruction names ("Tell Priya ..."), most frequent first,
        as header text (``replies.suggest_to``)."""
        store = self.ws.store
        size = (store.count_messages(self.account), store.count_messages(self.account, True))
        if self._book is None or self._book[0] != size:  # built again only when mail changed
            mail = store.messages(self.account) + store.messages(self.account, received=True)
            self._book = (size, replies.address_book(mail))
        return replies.suggest_to(self._book[1], instruction, store.addresses(self.account))

    def subject(self, text: str, instruction: str = "") -> str:
        """A subject line for a drafted email ``text``, written by the base model (without
        the account's adapter, where the model is base + adapter: the subject is a summary,
        not the user's prose); greedy, at most 24 tokens. Falls back on the instruction."""
        model = self.load()
        prompt = prompting.render(
            self.ws.chat_template, SUBJECT_SYSTEM, SUBJECT_ASK.format(email=prompting.clip(text))
        )
        with model.lock:
            generation = llama.stream(
                model.use(None), prompt, max_tokens=24, temperature=0.0, stop=self.ws.stops,
            )  # fmt: skip
            if self._last_prompt:  # put the draft's prompt back, for a fast regenerate
                llama.prefill(model.use(self.choice.lora), self._last_prompt)
        return clean_subject(generation.text, instruction)

    def headers(self, reply_to: Message, reply_all: bool = False) -> replies.ReplyHeaders:
        """To/Cc/Subject/In-Reply-To/References of a reply to ``reply_to``."""
        own = self.ws.store.addresses(self.account)
        return replies.reply_headers(reply_to, own, reply_all)

    def prompt_prefix(
        self, retrieved: Sequence[Retrieved], thread: Sequence[tuple[str, str]] = (),
        so_far: str = "",
    ) -> str:  # fmt: skip
        """The prompt up to the end of the instruction typed ``so_far`` ("...Instruction:"
        when nothing is): what ``prepare`` can evaluate while it is still being typed."""
        full = self.prompt(so_far + _MARK, retrieved, thread)
        return full.split(_MARK, 1)[0].rstrip()

    def prepare(
        self, instruction: str = "", exclude: Sequence[int] = (),
        reply_to: Message | None = None, thread: Sequence[tuple[str, str]] | None = None,
        correspondent: str | None = None, still_wanted: Callable[[], bool] | None = None,
        retrieved: Sequence[Retrieved] | None = None, query: str | None = None,
    ) -> tuple[list[Retrieved] | None, bool]:  # fmt: skip
        """While the user types: evaluate the prompt up to the instruction typed so far
        (system prompt, preamble, past emails, the conversation of a reply, the
        instruction's words) into llama.cpp's KV cache, so that ``draft`` with the same past
        emails evaluates only the instruction's last tokens on enter. The past emails are
        ``retrieved`` if given, else retrieved for ``query`` (default: the instruction).

        Returns (the past emails, whether their prompt was evaluated to the end); (None,
        False) if it did nothing. Stops
        between batches once ``still_wanted()`` is false (newer text, or enter); blocks
        while a draft runs (one context) and then does nothing if no longer wanted: the
        draft's prompt in the cache is worth more, regenerate reuses it."""
        thread, correspondent, exclude = self._reply_context(
            reply_to, thread, correspondent, exclude
        )
        model = self.load()
        with model.lock:
            if still_wanted is not None and not still_wanted():
                return None, False
            if retrieved is None:
                text = instruction if query is None else query
                retrieved = self.retrieve(text, exclude, thread, correspondent)
            prefix = self.prompt_prefix(retrieved, thread, instruction)
            llm = model.use(self.choice.lora)
            llama.prefill(llm, prefix, still_wanted)
            done = llama.cached_prefix(llm, llama.prompt_tokens(llm, prefix))
            return list(retrieved), done >= len(llama.prompt_tokens(llm, prefix)) - 1

    def _reply_context(
        self, reply_to: Message | None, thread: Sequence[tuple[str, str]] | None,
        correspondent: str | None, exclude: Sequence[int],
    ) -> tuple[list[tuple[str, str]], str | None, list[int]]:  # fmt: skip
        exclude = list(exclude)
        if reply_to is not None:
            thread = self.thread(reply_to) if thread is None else thread
            correspondent = correspondent or replies.correspondent(reply_to)
            if reply_to.id is not None:
                exclude.append(reply_to.id)
        return list(thread or []), correspondent, exclude

    def prompt(
        self, instruction: str, retrieved: Sequence[Retrieved],
        thread: Sequence[tuple[str, str]] = (),
    ) -> str:  # fmt: skip
        """The full prompt text for ``instruction`` with ``retrieved`` past emails and, for a
        reply, the ``thread`` it answers."""
        preamble = (
            self.ws.store.account(self.account).user_preamble or self.ws.config.prompt.user_preamble
        )
        return prompting.build(
            self.ws.chat_template, self.ws.config.prompt.system, instruction,
            [r.text for r in retrieved], preamble, thread,
        )  # fmt: skip

    def draft(
        self, instruction: str, on_token: Callable[[str], None] | None = None,
        exclude: Sequence[int] = (), seed: int | None = None,
        on_retrieved: Callable[[list[Retrieved]], None] | None = None,
        reply_to: Message | None = None, reply_all: bool = False,
        thread: Sequence[tuple[str, str]] | None = None, correspondent: str | None = None,
        retrieved: Sequence[Retrieved] | None = None,
    ) -> Draft:  # fmt: skip
        """Write one draft for ``instruction``, streaming pieces of text to ``on_token``.

        ``on_retrieved`` gets the past emails before generation starts; ``exclude`` lists
        store ids never to retrieve (the email being answered or re-drafted). ``reply_to``:
        the stored email being answered; its conversation goes in the prompt, the
        instruction may then be empty, and the draft carries the reply's headers. ``thread``
        and ``correspondent`` give a reply's context directly (evaluation: a held-out reply
        whose parent may only be quoted). ``retrieved``: the past emails to use, retrieved
        before (``Preparer.retrieval_for``); else they are retrieved now. Raises
        ``PipelineError`` for an empty instruction on a new email.
        """
        thread, correspondent, exclude = self._reply_context(
            reply_to, thread, correspondent, exclude
        )
        if not instruction.strip() and not thread:
            raise PipelineError("the instruction is empty: say what the email should do")
        self.load()
        assert self._model is not None
        with self._model.lock:
            draft = self._draft(
                instruction, on_token, exclude, seed, on_retrieved, thread, correspondent,
                retrieved,
            )  # fmt: skip
        if reply_to is not None:
            draft.headers = self.headers(reply_to, reply_all)
        return draft

    def _draft(
        self, instruction: str, on_token: Callable[[str], None] | None, exclude: Sequence[int],
        seed: int | None, on_retrieved: Callable[[list[Retrieved]], None] | None,
        thread: list[tuple[str, str]], correspondent: str | None,
        given: Sequence[Retrieved] | None = None,
    ) -> Draft:  # fmt: skip
        model = self.load()
        start = time.perf_counter()
        retrieved = (
            list(given)
            if given is not None
            else self.retrieve(instruction, exclude, thread, correspondent)
        )
        retrieval_ms = (time.perf_counter() - start) * 1000
        if on_retrieved:
            on_retrieved(retrieved)
        d = self.settings
        self._last_prompt = self.prompt(instruction, retrieved, thread)
        generation = llama.stream(
            model.use(self.choice.lora), self._last_prompt,
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
            thread=thread,
        )


IDLE_EXIT_S = 1.0  # a Preparer's thread ends after this long without keystrokes


class Preparer:
    """Keeps a drafter's prompt evaluated while an instruction is being typed, so that its
    first token comes right after enter.

    Call ``typed(text)`` after every keystroke (from any thread; it returns at once). A
    background thread works toward the latest text, coalescing keystrokes that come while
    it works. Retrieval is debounced twice: past emails are retrieved for the complete
    words typed so far, and retrieved again only once the prompt with the current ones has
    been evaluated to the end (about 100 prompt tokens/s on one core of a 2-core laptop:
    seconds for three past emails), so the cache always holds, or is finishing, a prompt
    whose past emails are at most a few words behind the typing. In between, only the
    instruction's new words are evaluated.

    On enter call ``stop()``, then ``retrieval_for(instruction)``: the past emails whose
    prompt is cached, when the instruction only added words to what they were retrieved
    for; ``Drafter.draft(retrieved=...)`` then evaluates just the instruction's last tokens.
    ``close()`` ends the thread. ``get_drafter`` is called on that thread, so loading the
    model never blocks the caller. Errors are swallowed: preparing is only a head start,
    the draft reports them.
    """

    def __init__(self, get_drafter: Callable[[], Drafter], reply_to: Message | None = None) -> None:
        self._get_drafter = get_drafter
        self._reply_to = reply_to
        self._cond = threading.Condition()
        self._latest: str | None = None
        self._epoch = 0  # bumped by stop(): preparations of an earlier epoch are unwanted
        self._closed = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self._retrieved: list[Retrieved] | None = None
        self._query: str | None = None  # what they were retrieved for
        self._ready = False  # their prompt is evaluated to the end
        self.prepared = 0  # how many preparations ran (for tests and benchmarks)

    def typed(self, text: str) -> None:
        """The instruction is now ``text``; prepare for it when the thread is free."""
        with self._cond:
            if self._closed:
                return
            self._latest = text
            if self._thread is None:
                # Not a daemon: the interpreter waits for it (a thread killed inside
                # llama.cpp at exit aborts the process); it ends itself when idle.
                self._thread = threading.Thread(target=self._run, name="prepare")
                self._thread.start()
            self._cond.notify()

    def stop(self) -> None:
        """The instruction was submitted: drop pending text, and stop the current
        preparation at its next batch (it leaves the draft's cache alone if it has not yet
        taken the model)."""
        with self._cond:
            self._latest = None
            self._epoch += 1

    def retrieval_for(self, instruction: str) -> list[Retrieved] | None:
        """The prepared past emails, if ``instruction`` extends the text they were retrieved
        for (the user only typed on); None if they were retrieved for other words."""
        with self._cond:
            if self._retrieved is None or self._query is None:
                return None
            if not instruction.strip().startswith(self._query.strip()):
                return None
            return list(self._retrieved)

    def close(self) -> None:
        """End the background thread (after its current batch)."""
        with self._cond:
            self._closed = True
            self._latest = None
            self._epoch += 1
            self._cond.notify()

    def idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until nothing is pending or running; whether so."""
        with self._cond:
            return self._cond.wait_for(lambda: self._latest is None and not self._busy, timeout)

    def _wanted(self, epoch: int) -> Callable[[], bool]:
        # Not once the instruction was submitted, nor once newer text waits: work toward it.
        return lambda: epoch == self._epoch and self._latest is None

    def _run(self) -> None:
        while True:
            with self._cond:
                work = self._cond.wait_for(
                    lambda: self._closed or self._latest is not None, IDLE_EXIT_S
                )
                if self._closed or not work:  # typed() starts another when needed
                    self._thread = None
                    return
                text, epoch = self._latest or "", self._epoch
                self._latest = None
                self._busy = True
                query = complete_words(text)
                again = self._retrieved is None or (self._ready and query != self._query)
            try:
                drafter = self._get_drafter()
                if again:
                    retrieved, ready = drafter.prepare(
                        text, reply_to=self._reply_to, still_wanted=self._wanted(epoch),
                        query=query,
                    )  # fmt: skip
                else:
                    retrieved, ready = drafter.prepare(
                        text, reply_to=self._reply_to, still_wanted=self._wanted(epoch),
                        retrieved=self._retrieved,
                    )  # fmt: skip
                with self._cond:
                    if retrieved is not None:  # the cache now holds (part of) their prompt
                        self._retrieved, self._ready = retrieved, ready
                        if again:
                            self._query = query
                self.prepared += 1
            except Exception:  # noqa: BLE001 - see the class docstring
                pass
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


def complete_words(text: str) -> str:
    """``text`` up to its last whitespace (the word being typed left out), or all of it
    while the first word is typed."""
    cut = max(text.rfind(" "), text.rfind("\n"))
    return text[:cut].rstrip() if cut > 0 else text
