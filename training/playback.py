"""Data playback (Panza, arXiv 2407.10994, section 3): a pretrained LLM reads each email the
user sent and writes the instruction that would have produced it, giving (instruction,
real email) pairs to fine-tune on. A reply is read with the email it answers
(``replies.context_of``: the stored parent, else the original quoted in it).

Each result is cached in the store under (email content hash, model fingerprint, prompt
hash) and committed as soon as it exists, so an interrupted run resumes where it stopped and
a second run costs nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from panza_core import prompting, replies
from panza_core.config import PlaybackConfig
from panza_core.models import ModelRef, chat_template, eos_text
from panza_core.store import Message, Store
from training import faithful

SYSTEM = "You summarise emails as short instructions for an email-writing assistant."
ASK = "Summarise this email as an instruction.\n\nSubject: {subject}\n\n{email}"
# Worked examples: a 135M model follows a pattern far better than a description. They are
# deliberately unlike each other so that it copies the form, not the content.
SHOTS = [
    (
        "Slides and Friday call",
        "Hi Anna,\n\nThanks for sending the slides yesterday. Could we move our Friday call to "
        "3pm? I have a dentist appointment in the morning.\n\nBest,\nJo",
        "Write an email to Anna thanking her for the slides and asking to move Friday's call "
        "to 3pm because of a dentist appointment.",
    ),
    (
        "Re: Sunday",
        "Hey Mum!\n\nWe'd love to come on Sunday. I'll bring a salad, and the kids are excited "
        "to see the garden.\n\nLove,\nJo",
        "Write an email to Mum accepting the Sunday invitation and offering to bring a salad.",
    ),
    (
        "Hallway light",
        "Dear Mr Brown,\n\nThe light in the hallway on the second floor has been out since "
        "Monday. Could someone look at it this week?\n\nRegards,\nJo Smith",
        "Write an email to Mr Brown reporting that the second-floor hallway light has been out "
        "since Monday and asking for a repair this week.",
    ),
]
# A reply is summarised with the email it answers, so its instruction can say what the reply
# does to it ("accept", "decline", "answer the question about ..."); one worked reply.
REPLY_ASK = (
    "Summarise this reply as an instruction.\n\nIt answers this email:\n{parent}\n\n"
    "Subject: {subject}\n\n{email}"
)
REPLY_SHOT = (
    "Hi Jo, the printer on the third floor is jammed again. Do you know who fixes it?\n\nSam",
    "Re: Printer",
    "Hi Sam,\n\nCall Dave from facilities on extension 4410, he fixed it last time.\n\nJo",
    "Write a reply to Sam telling him to call Dave from facilities on extension 4410 about "
    "the jammed printer.",
)
PRIMER = "Write an email"  # the answer is started for the model, so it can only continue it
REPLY_PRIMER = "Write a reply"
QUEUED_PER_SLOT = 4  # prompts handed to a batched completer per sequence slot
MAX_PARENT_CHARS = 800  # the answered email is cut here in the playback prompt
_GREETING = re.compile(r"^\s*(?:hi|hello|hey|dear)\s+([^,!:\n]{1,40})[,!:]", re.I)
MAX_EMAIL_CHARS = 1500  # longer emails are cut for the playback prompt only
_LABEL = re.compile(r"^\s*(\**\s*)?(instruction|summary|task)\s*:?\s*(\**)?\s*", re.I)


Done = Callable[[int, str], None]  # (index of the prompt, its completion)


class Completer(Protocol):
    """Anything that completes a raw (already templated) prompt."""

    def __call__(self, prompt: str, max_tokens: int, temperature: float, seed: int) -> str: ...


@dataclass
class PlaybackReport:
    """``counts``: ``generated`` now, ``cached`` from before, ``fallback`` (model gave
    nothing), ``skipped`` (over the limit). ``kinds``: ``with_parent`` (replies played back
    with the email they answer) and ``new`` (the rest)."""

    counts: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    facts: Counter = field(default_factory=Counter)  # training.faithful.Verdict -> pairs

    def summary(self) -> str:
        """One line for the CLI: the counts, the kinds, then the fact check."""
        done = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()))
        line = (
            f"{done}; {self.kinds['with_parent']} replies read with the email they answer, "
            f"{self.kinds['new']} new emails"
        )
        if self.facts:
            line += (
                f"; facts: {self.facts['kept']} instructions kept as played back, "
                f"{self.facts['repaired']} given the facts they missed, "
                f"{self.facts['rewritten']} rewritten from the email (they invented some)"
            )
        return line


# Bump when the prompt's code changes what the constants below do not show (how the primer
# names the addressee, what a reply is shown with): cached instructions are then redone.
PROMPT_VERSION = 2


def prompt_hash(config: PlaybackConfig, template: str) -> str:
    """The cache key part that changes whenever the playback prompt or settings change."""
    return prompting.fingerprint(
        PROMPT_VERSION,
        SYSTEM,
        ASK,
        SHOTS,
        PRIMER,
        REPLY_ASK,
        REPLY_SHOT,
        REPLY_PRIMER,
        _GREETING.pattern,
        template,
        config.temperature,
        config.max_tokens,
        config.seed,
    )


def playback_prompt(template: str, message: Message, parent: str = "", to: str = "") -> str:
    """The few-shot playback prompt for one email, ending inside the primed answer.

    ``parent``: the text of the email a reply answers; the prompt then asks for a reply's
    instruction, with one worked reply among the examples. ``to``: the first name of whom
    the reply answers (else the name its greeting uses, if any), put in the primer."""
    messages = [{"role": "system", "content": SYSTEM}]
    for subject, body, instruction in SHOTS:
        messages.append({"role": "user", "content": ASK.format(subject=subject, email=body)})
        messages.append({"role": "assistant", "content": instruction})
    subject, email = message.subject or "(none)", message.text[:MAX_EMAIL_CHARS]
    if parent:
        shot_parent, shot_subject, shot_body, shot_instruction = REPLY_SHOT
        shot = REPLY_ASK.format(parent=shot_parent, subject=shot_subject, email=shot_body)
        messages.append({"role": "user", "content": shot})
        messages.append({"role": "assistant", "content": shot_instruction})
        cut = prompting.clip(parent, MAX_PARENT_CHARS)
        ask = REPLY_ASK.format(parent=cut, subject=subject, email=email)
    else:
        ask = ASK.format(subject=subject, email=email)
    messages.append({"role": "user", "content": ask})
    return prompting.render_messages(template, messages) + primer(message, bool(parent), to)


def primer(message: Message, reply: bool = False, to: str = "") -> str:
    """``PRIMER`` (``REPLY_PRIMER`` for a ``reply``), plus the addressee: the name the
    email's greeting uses ("Hi Tom,"), else ``to``. Naming them keeps a small model from
    copying the worked example's name."""
    start = REPLY_PRIMER if reply else PRIMER
    match = _GREETING.match(message.text)
    name = match.group(1).strip() if match else to
    return f"{start} to {name}" if name else start


def clean(raw: str, start: str = PRIMER) -> str | None:
    """One instruction from the model's continuation of ``start`` (the primer).

    Keeps the first line, drops labels, quotes and trailing chatter, caps it at 60 words.
    Returns None if nothing usable is left.
    """
    first = raw.lstrip(" ").split("\n", 1)[0].strip()
    text = _LABEL.sub("", " ".join(f"{start} {first}".split()))
    text = text.strip().strip("\"'`*").strip()
    words = text.split()
    if len(words) > 60:
        text = " ".join(words[:60]).rstrip(",;") + "."
    # The primer and at least two real words more ("Write a reply to Jo :" says nothing).
    if sum(any(c.isalnum() for c in w) for w in words) < len(start.split()) + 2:
        return None
    return text


def llama_completer(model: ModelRef, n_threads: int = 0) -> Completer:
    """Complete with llama.cpp on a GGUF model."""
    from panza_core import llama

    llm = llama.load(model.path, n_ctx=2048, n_threads=n_threads)
    # One line is all playback wants; the turn's end also ends it.
    stops = [*prompting.turn_ends(chat_template(model), eos_text(model)), "\n"]

    def complete(prompt: str, max_tokens: int, temperature: float, seed: int) -> str:
        return llama.stream(
            llm, prompt, max_tokens=max_tokens, temperature=temperature, seed=seed,
            stop=stops,
        ).text  # fmt: skip

    return complete


def transformers_completer(model: ModelRef, batch: int = 8) -> ManyCompleter:
    """Complete with transformers on a Hugging Face model folder, ``batch`` prompts per
    ``generate`` call (left-padded, with an attention mask): on a CUDA GPU when torch sees
    one (bf16 where supported), else on the CPU in float32 (slower than llama.cpp)."""
    import torch
    from transformers import AutoModelForCausalLM

    from training.base_model import load_tokenizer

    tokenizer = load_tokenizer(model)
    tokenizer.padding_side = "left"  # generation continues at the right end of each row
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    lm = AutoModelForCausalLM.from_pretrained(model.path, local_files_only=True, dtype=dtype)
    lm = lm.to("cuda" if cuda else "cpu").eval()

    def generate(prompts: Sequence[str], max_tokens: int, temperature: float) -> list[str]:
        ids = tokenizer(list(prompts), return_tensors="pt", padding=True,
                        add_special_tokens=True).to(lm.device)  # fmt: skip
        with torch.no_grad():
            out = lm.generate(
                **ids, max_new_tokens=max_tokens, do_sample=temperature > 0,
                temperature=temperature or None, pad_token_id=tokenizer.pad_token_id,
            )  # fmt: skip
        new = out[:, ids["input_ids"].shape[1] :]
        return [tokenizer.decode(row, skip_special_tokens=True) for row in new]

    def complete(prompts: Sequence[str], max_tokens: int, temperature: float, seed: int,
                 done: Done | None = None) -> list[str]:  # fmt: skip
        torch.manual_seed(seed)
        texts: list[str] = []
        for start in range(0, len(prompts), batch):
            for text in generate(prompts[start : start + batch], max_tokens, temperature):
                if done:
                    done(len(texts), text)
                texts.append(text)
        return texts

    return complete


def batched_completer(model: ModelRef, n_seq: int) -> ManyCompleter:
    """Complete ``n_seq`` prompts per llama.cpp batch on a GGUF model
    (``llama_batch.BatchedCompleter``): several emails per decode step."""
    from panza_core import llama
    from panza_core.llama_batch import BatchedCompleter

    llm = llama.load(model.path, n_ctx=512, n_threads=0)  # the weights; its context is unused
    batched = BatchedCompleter(llm, n_seq=n_seq, n_ctx=2048)
    stops = [*prompting.turn_ends(chat_template(model), eos_text(model)), "\n"]

    def complete(prompts: Sequence[str], max_tokens: int, temperature: float, seed: int,
                 done: Done | None = None) -> list[str]:  # fmt: skip
        return batched.complete(prompts, max_tokens, stops, temperature, seed, done)

    return complete


class ManyCompleter(Protocol):
    """Anything that completes several raw (already templated) prompts at once; ``done(i,
    text)``, if given, is called when prompt ``i`` is complete (a prompt's result can be
    kept before the others end)."""

    def __call__(
        self, prompts: Sequence[str], max_tokens: int, temperature: float, seed: int,
        done: Done | None = None,
    ) -> list[str]: ...  # fmt: skip


def one_at_a_time(completer: Completer) -> ManyCompleter:
    """A ``ManyCompleter`` that calls ``completer`` on each prompt in turn."""

    def complete(prompts: Sequence[str], max_tokens: int, temperature: float, seed: int,
                 done: Done | None = None) -> list[str]:  # fmt: skip
        texts = []
        for i, prompt in enumerate(prompts):
            texts.append(completer(prompt, max_tokens, temperature, seed))
            if done:
                done(i, texts[-1])
        return texts

    return complete


def default_completer(model: ModelRef, config: PlaybackConfig) -> ManyCompleter:
    """For a GGUF model, batched llama.cpp with ``[playback] batch`` > 1, else one prompt at
    a time; for a Hugging Face folder, transformers ``generate`` on ``batch`` prompts at
    once (on a GPU when there is one)."""
    if model.kind == "gguf":
        if config.batch > 1:
            return batched_completer(model, config.batch)
        return one_at_a_time(llama_completer(model))
    return transformers_completer(model, max(1, config.batch))


def run(
    store: Store, account: str, model: ModelRef, config: PlaybackConfig,
    completer: Completer | None = None, limit: int = 0,
    progress: Callable[[int, int], None] | None = None,
    messages: Sequence[Message] | None = None, many: ManyCompleter | None = None,
) -> PlaybackReport:  # fmt: skip
    """Give every message of ``account`` (or only ``messages``, e.g. the training
    selection, ``training.selection``) an instruction; ``limit`` > 0 caps new generations.

    Prompts are completed ``[playback] batch`` at a time (``many``, else ``completer`` one
    by one, else ``default_completer``), handed over ``QUEUED_PER_SLOT`` batches at once,
    and each result is stored as soon as it is complete. ``progress(done, total)`` is called
    as messages are done. The model loads only if some message still needs an instruction.
    """
    store.account(account)
    template = chat_template(model)
    key = prompt_hash(config, template)
    messages = store.messages(account) if messages is None else list(messages)
    report = PlaybackReport()
    done = 0
    todo: list[tuple[Message, str, str, bool]] = []  # message, prompt, primer, reply

    def advance(count: int = 1) -> None:
        nonlocal done
        for _ in range(count):
            done += 1
            if progress:
                progress(done, len(messages))

    def flush() -> None:
        nonlocal many
        if not todo:
            return
        if many is None:
            many = one_at_a_time(completer) if completer else default_completer(model, config)
        kept: set[int] = set()

        def keep(i: int, raw: str) -> None:  # stored at once: a kill loses no finished one
            message, _, start, reply = todo[i]
            instruction = clean(raw, start)
            if instruction is None:
                report.counts["fallback"] += 1
                kind = "a reply" if reply else "an email"
                instruction = f"Write {kind} with the subject: {message.subject or 'no subject'}"
            else:
                report.counts["generated"] += 1
            store.put_instruction(message.content_hash, model.fingerprint, key, instruction)
            kept.add(i)
            advance()

        raws = many([t[1] for t in todo], config.max_tokens, config.temperature, config.seed,
                    done=keep)  # fmt: skip
        for i, raw in enumerate(raws):
            if i not in kept:
                keep(i, raw)
        todo.clear()

    # Several slots' worth of prompts per call: a slot whose email is done takes the next
    # one, and only the call's last prompts leave slots idle.
    batch = max(1, config.batch) * QUEUED_PER_SLOT if completer is None else 1
    for message in messages:
        thread = replies.context_of(store, account, message)
        parent = thread[-1].text if thread else ""
        known = thread and not thread[-1].mine and thread[-1].author != replies.QUOTED_AUTHOR
        to = replies.first_name(thread[-1].author) if known else ""
        report.kinds["with_parent" if parent else "new"] += 1
        if store.instruction(message.content_hash, model.fingerprint, key) is not None:
            report.counts["cached"] += 1
            advance()
        elif limit and report.counts["generated"] + report.counts["fallback"] + len(todo) >= limit:
            report.counts["skipped"] += 1
            advance()
        else:
            prompt = playback_prompt(template, message, parent, to)
            todo.append((message, prompt, primer(message, bool(parent), to), bool(parent)))
            if len(todo) >= batch:
                flush()
    flush()
    chosen = {m.content_hash for m in messages}
    played = [p for p in raw_pairs(store, account, model, config) if p[0].content_hash in chosen]
    report.facts = faithful.checked(played)[1]
    return report


def pairs(store: Store, account: str, model: ModelRef, config: PlaybackConfig) -> list[Any]:
    """(message, instruction) pairs of ``account`` made with this model and prompt, each
    instruction checked against its email's facts (``training.faithful``)."""
    return faithful.checked(raw_pairs(store, account, model, config))[0]


def raw_pairs(store: Store, account: str, model: ModelRef, config: PlaybackConfig) -> list[Any]:
    """The pairs as the model played them back, before the fact check."""
    key = prompt_hash(config, chat_template(model))
    return list(store.pairs(account, model.fingerprint, key))
