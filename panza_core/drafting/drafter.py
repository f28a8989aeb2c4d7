"""The ``Drafter``: one account's loaded model, turning a ``DraftRequest`` into a draft.

The model is the account's active export (a merged GGUF, or the base GGUF plus a GGUF LoRA
adapter), else the base model when it is a GGUF. Prompts come from ``prompting.build`` with
the base model's chat template, exactly as in training.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cached_property

from panza_core import facts, guidance, llama, prompting, replies
from panza_core.config import DraftingConfig
from panza_core.drafting.choice import ModelChoice, choose_model
from panza_core.drafting.request import Draft, DraftRequest, Retrieved
from panza_core.drafting.subject import SUBJECT_ASK, SUBJECT_SYSTEM, clean_subject
from panza_core.errors import PipelineError
from panza_core.store import Message
from panza_core.workspace import Workspace

_MARK = "\x00PANZA-INSTRUCTION\x00"  # where the instruction goes, to cut the prompt there
CANDIDATE_SEED_STRIDE = 100_003  # candidates of one attempt never share a seed with the next


class Drafter:
    """Loaded models for one account, reused across drafts.

    Cheap to make: nothing is read but the account until a model is needed (``choice`` is
    found, and raises ``PipelineError`` if there is none, on first use). Drafters whose
    models are the same GGUF (accounts with adapter-only exports on one base) share one
    loaded model and swap adapters per draft (``llama.SharedModel``). Safe to call from
    several threads: drafts on a model run one at a time (a llama.cpp context is not
    reentrant), so a superseded draft in the TUI finishes its current token first.
    """

    def __init__(
        self, ws: Workspace, account: str, use_adapter: bool = True, use_rag: bool = True,
        choice: ModelChoice | None = None, settings: DraftingConfig | None = None,
    ) -> None:  # fmt: skip
        ws.store.require_account(account)
        self.ws = ws
        self.account = account
        self.use_adapter = use_adapter
        self.use_rag = use_rag
        if choice is not None:
            self.__dict__["choice"] = choice
        self.settings = settings or ws.config.drafting
        self._model: llama.SharedModel | None = None
        self._last_prompt = ""  # the latest draft's, kept in the KV cache for regenerate
        # (own, received) email counts and the address book built from them
        self._book: tuple[tuple[int, int], list[tuple[str, str, int]]] | None = None

    @cached_property
    def choice(self) -> ModelChoice:
        """The GGUF (and adapter) this drafter loads; ``PipelineError`` if there is none."""
        return choose_model(self.ws, self.account, self.use_adapter)

    # the request ------------------------------------------------------------------------

    def request(
        self, instruction: str = "", reply_to: Message | None = None, reply_all: bool = False,
        thread: Sequence[replies.Turn] | None = None, correspondent: str | None = None,
        exclude: Sequence[int] = (), retrieved: Sequence[Retrieved] | None = None,
        seed: int | None = None,
    ) -> DraftRequest:  # fmt: skip
        """What one draft needs, read from the store once: for a reply to ``reply_to``, its
        conversation (``replies.thread_before``), correspondent and headers; the user's
        preamble. ``thread`` and ``correspondent`` give a reply's context directly
        (evaluation: a held-out reply whose parent may only be quoted). Raises
        ``AccountError`` if the account is gone."""
        store = self.ws.store
        account = store.account(self.account)
        headers = None
        exclude = list(exclude)
        if reply_to is not None:
            if thread is None:
                thread = replies.thread_before(store, self.account, reply_to)
            correspondent = correspondent or replies.correspondent(reply_to)
            headers = replies.reply_headers(reply_to, account.addresses, reply_all)
            if reply_to.id is not None:
                exclude.append(reply_to.id)
        return DraftRequest(
            account=self.account, settings=self.settings,
            preamble=account.user_preamble or self.ws.config.prompt.user_preamble,
            instruction=instruction, reply_to=reply_to, reply_all=reply_all,
            thread=tuple(thread or ()), correspondent=correspondent, headers=headers,
            exclude=tuple(exclude), retrieved=None if retrieved is None else tuple(retrieved),
            seed=seed,
        )  # fmt: skip

    # the model --------------------------------------------------------------------------

    def load(self) -> llama.SharedModel:
        """Load llama.cpp now rather than on the first draft, and for RAG bring the
        retrieval index up to date with the store (another process may have changed it);
        returns the loaded model."""
        model = self._loaded()
        if self.use_rag:
            self.ws.update_index(self.account)
        return model

    def _loaded(self) -> llama.SharedModel:
        if self._model is None:
            d = self.settings
            self._model = llama.shared(self.choice.path, d.n_ctx, d.threads, d.seed)
        return self._model

    def forget_prompt(self) -> None:
        """Drop the evaluated prompt (llama.cpp's KV cache), so the next draft evaluates its
        whole prompt as a new instruction would; benchmarks time first tokens this way."""
        if self._model is not None:
            with self._model.lock:
                self._model.llm.reset()

    # retrieval and prompts --------------------------------------------------------------

    def retrieve(self, request: DraftRequest, query: str | None = None) -> list[Retrieved]:
        """Top-k past emails above the similarity threshold, best first, never the
        request's ``exclude``, for ``query`` (default: the instruction). For a reply the
        query adds the email being answered, and emails sent to its correspondent come
        first (``retrieval.search_emails``). The index is brought up to date first."""
        from panza_core.retrieval import search_emails

        r = self.ws.config.retrieval
        if not self.use_rag or r.top_k <= 0:
            return []
        self.ws.update_index(self.account)
        text = request.instruction if query is None else query
        index = self.ws.index(self.account)
        vector = self.ws.embedder.encode_query(replies.query_text(text, request.turns))
        hits = search_emails(
            self.ws.store, index, vector, r.top_k, r.threshold, request.exclude,
            request.correspondent,
        )  # fmt: skip
        return [Retrieved(h.id, round(h.score, 4), m.subject, m.text) for h, m in hits]

    def prompt(self, request: DraftRequest, retrieved: Sequence[Retrieved]) -> str:
        """The full prompt text for the request with ``retrieved`` past emails."""
        return prompting.build(
            self.ws.chat_template, self.ws.config.prompt.system, request.instruction,
            [r.text for r in retrieved], request.preamble, request.turns,
        )  # fmt: skip

    def prompt_prefix(self, request: DraftRequest, retrieved: Sequence[Retrieved]) -> str:
        """The prompt up to the end of the instruction typed so far ("...Instruction:" when
        nothing is): what ``prepare`` can evaluate while it is still being typed."""
        full = self.prompt(request.typed(request.instruction + _MARK), retrieved)
        return full.split(_MARK, 1)[0].rstrip()

    # while typing, and on enter ----------------------------------------------------------

    def prepare(
        self, request: DraftRequest, still_wanted: Callable[[], bool] | None = None,
        query: str | None = None,
    ) -> tuple[list[Retrieved] | None, bool]:  # fmt: skip
        """While the user types: evaluate the prompt up to the instruction typed so far
        (system prompt, preamble, past emails, the conversation of a reply, the
        instruction's words) into llama.cpp's KV cache, so that ``draft`` with the same past
        emails evaluates only the instruction's last tokens on enter. The past emails are
        the request's ``retrieved`` if set, else retrieved for ``query`` (default: the
        instruction).

        Returns (the past emails, whether their prompt was evaluated to the end); (None,
        False) if it did nothing. Stops between batches once ``still_wanted()`` is false
        (newer text, or enter); blocks while a draft runs (one context) and then does
        nothing if no longer wanted: the draft's prompt in the cache is worth more,
        regenerate reuses it."""
        model = self._loaded()
        with model.lock:
            if still_wanted is not None and not still_wanted():
                return None, False
            retrieved = request.retrieved
            if retrieved is None:
                retrieved = tuple(self.retrieve(request, query))
            prefix = self.prompt_prefix(request, retrieved)
            llm = model.use(self.choice.lora)
            llama.prefill(llm, prefix, still_wanted)
            tokens = llama.prompt_tokens(llm, prefix)
            return list(retrieved), llama.cached_prefix(llm, tokens) >= len(tokens) - 1

    def draft(
        self, request: DraftRequest, on_token: Callable[[str], None] | None = None,
        on_retrieved: Callable[[list[Retrieved]], None] | None = None,
    ) -> Draft:  # fmt: skip
        """Write one draft for ``request``, streaming pieces of text to ``on_token``.

        ``on_retrieved`` gets the past emails (the request's, else retrieved now) before
        generation starts. A reply's draft carries its headers. Raises ``PipelineError``
        for an empty instruction on a new email.
        """
        if not request.instruction.strip() and not request.thread:
            raise PipelineError("the instruction is empty: say what the email should do")
        model = self._loaded()
        with model.lock:
            start = time.perf_counter()
            given = request.retrieved
            retrieved = list(given) if given is not None else self.retrieve(request)
            retrieval_ms = (time.perf_counter() - start) * 1000
            if on_retrieved:
                on_retrieved(retrieved)
            d = request.settings
            self._last_prompt = self.prompt(request, retrieved)
            llm = model.use(self.choice.lora)
            generation = llama.stream(
                llm, self._last_prompt,
                max_tokens=d.max_tokens,
                temperature=d.temperature, top_p=d.top_p, repeat_penalty=d.repeat_penalty,
                seed=d.seed if request.seed is None else request.seed,
                stop=self.ws.stops, on_token=on_token,
                logits_processor=self._guide(model, request, retrieved),
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
            headers=request.headers,
            thread=request.turns,
        )

    def _guide(
        self, model: llama.SharedModel, request: DraftRequest, retrieved: Sequence[Retrieved]
    ) -> guidance.FactGuide | None:
        """The draft's fact guide (``panza_core.guidance``), None where the settings turn
        it off. Facts may come from the instruction, the conversation and the preamble."""
        d = request.settings
        settings = guidance.Guidance(d.fact_boost, d.unasked_penalty)
        if not settings.active:
            return None
        wanted = facts.facts(request.instruction)
        allowed = set(wanted).union(
            *(facts.facts(text) for _, text in request.turns), facts.facts(request.preamble)
        )
        copied = set().union(*(facts.facts(r.text) for r in retrieved)) - allowed
        start = len(llama.prompt_tokens(model.llm, self._last_prompt))
        vocabulary = model.vocabulary(self.ws.stops)
        return guidance.FactGuide(vocabulary, start, wanted, allowed, copied, settings)

    def candidates(
        self, request: DraftRequest, count: int | None = None,
        on_token: Callable[[str], None] | None = None,
        on_retrieved: Callable[[list[Retrieved]], None] | None = None,
    ) -> list[Draft]:  # fmt: skip
        """``count`` drafts of ``request`` (default ``[drafting] candidates``), best first
        by their fact check (``Draft.fact_rank``; ties keep their order). The first streams
        to ``on_token``; the others are sampled with other seeds on the same past emails,
        their prompt already evaluated, so each costs its decode only. Every draft carries
        its ``facts`` (``panza_core.facts.check`` against the instruction, the past emails,
        the conversation and the preamble). Raises as ``draft`` does."""
        count = max(1, request.settings.candidates if count is None else count)
        first = self.draft(request, on_token, on_retrieved)
        same = request.using(first.retrieved)
        base = request.settings.seed if request.seed is None else request.seed
        drafts = [first] + [
            self.draft(replace(same, seed=base + CANDIDATE_SEED_STRIDE * i))
            for i in range(1, count)
        ]
        for number, draft in enumerate(drafts):
            draft.candidate = number
            draft.facts = facts.check(
                request.instruction, draft.draft, [r.text for r in draft.retrieved],
                [text for _, text in request.turns], [request.preamble],
            )  # fmt: skip
        return sorted(drafts, key=Draft.fact_rank)

    # around the draft -------------------------------------------------------------------

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
        model = self._loaded()
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
