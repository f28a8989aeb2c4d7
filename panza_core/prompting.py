"""The one prompt format, shared byte for byte by training and drafting.

A prompt is the model's own chat template applied to two messages: a system preamble and a
user message holding the optional user preamble, the retrieved past emails (RAG), for a
reply the email it answers with the conversation before it, and last the instruction.
Training appends the real email plus the end-of-turn marker; drafting lets the model write
it. Rendering uses a sandboxed Jinja environment configured as transformers does
(``trim_blocks``, ``lstrip_blocks``), so the same template gives the same text in both places.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Sequence

RAG_HEADER = "Here are some emails I wrote in the past, to show my style:"
PARENT_HEADER = "This is the email I am replying to:"
THREAD_HEADER = "This is the conversation I am replying to, oldest first; I answer the last email:"
REPLY_INSTRUCTION = "Write my reply to this email."  # a reply drafted without an instruction
MAX_RETRIEVED_CHARS = 800  # each past email is cut here, so prompts stay within max_length


def clip(text: str, limit: int = MAX_RETRIEVED_CHARS) -> str:
    """``text`` stripped, cut at the last whitespace before ``limit`` characters."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut[: cut.rfind(" ")] if " " in cut else cut


def user_message(
    instruction: str, retrieved: Sequence[str] = (), preamble: str = "",
    thread: Sequence[tuple[str, str]] = (),
) -> str:  # fmt: skip
    """The user turn: preamble, numbered past emails (clipped), the conversation a reply
    answers (``thread``: (author, text) oldest first, the parent last; "me" marks the user),
    then the instruction (``REPLY_INSTRUCTION`` for a reply without one)."""
    parts = []
    if preamble.strip():
        parts.append(preamble.strip())
    if retrieved:
        examples = "\n\n".join(f"EMAIL {i}:\n{clip(text)}" for i, text in enumerate(retrieved, 1))
        parts.append(f"{RAG_HEADER}\n\n{examples}")
    if thread:
        header = THREAD_HEADER if len(thread) > 1 else PARENT_HEADER
        turns = "\n\n".join(f"FROM {who}:\n{text.strip()}" for who, text in thread)
        parts.append(f"{header}\n\n{turns}")
    if not instruction.strip() and thread:
        instruction = REPLY_INSTRUCTION
    parts.append(f"Instruction: {instruction.strip()}")
    return "\n\n".join(parts)


@functools.lru_cache(maxsize=16)
def _compile(template: str):  # type: ignore[no-untyped-def]
    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template)


# Text that tokenizers turn into control tokens wherever it appears: the "<|...|>" family
# (Llama-3, Qwen, Phi), SentencePiece's and Gemma's bare names. Bracketed ones ([INST],
# [TOOL_CALLS], [control_8]) only for templates that use them (Mistral): elsewhere "[PATCH]"
# is plain text and stays as written.
_CONTROL = r"<\|[^\s<>|]{1,64}\|>|</?s>|<(?:unk|bos|eos|pad|mask)>"
_BRACKETED = r"\[/?(?:[A-Z][A-Z_]{1,31}|control_\d+)\]"
_LITERAL = re.compile(r"</?[A-Za-z_|][^\s<>{}%'\"]{0,63}>|\[/?[A-Z_]{2,32}\]")


@functools.lru_cache(maxsize=16)
def _control_pattern(template: str) -> re.Pattern[str]:
    literals = sorted(set(_LITERAL.findall(template)), key=len, reverse=True)
    parts = [_CONTROL, *map(re.escape, literals)]
    if "[INST]" in template:
        parts.append(_BRACKETED)
    return re.compile("|".join(parts))


def neutralise(text: str, template: str = "") -> str:
    """``text`` with everything that reads as a control token made plain text.

    Retrieved emails, received mail and the user's own text go into a prompt that llama.cpp
    and Hugging Face tokenizers both scan for special-token text: an email quoting
    "<|im_end|>" would otherwise end the user turn, and one holding "<|eot_id|>" would teach
    the model to stop mid-email. A space after the opening character ("< |im_end|>") keeps
    the text readable and makes it ordinary tokens. Covers the "<|...|>" family, ``<s>``,
    ``</s>``, ``<unk>``, ``<bos>``, ``<eos>``, ``<pad>``, ``<mask>``, every ``<tag>`` or
    ``[TAG]`` literal of ``template`` (``<start_of_turn>``, ``<tool_call>``, ``[INST]``), and,
    for templates using ``[INST]``, every bracketed upper-case tag. Idempotent.
    """
    pattern = _control_pattern(template)
    return pattern.sub(lambda m: f"{m.group(0)[0]} {m.group(0)[1:]}", text)


def render_messages(template: str, messages: Sequence[dict[str, str]]) -> str:
    """Apply a chat template to ``messages`` with the generation prompt appended.

    Every message's content is ``neutralise``d first, so no email can inject control tokens.

    BOS is left to the tokenizer (llama.cpp and transformers both add it when the model
    asks for it), so ``bos_token`` renders empty. Some families have no system role
    (Gemma's template raises "System role not supported"); for those a leading system
    message opens the first user turn instead, as their model cards advise.
    """
    from jinja2.exceptions import TemplateError

    def apply(turns: Sequence[dict[str, str]]) -> str:
        return _compile(template).render(
            messages=list(turns), add_generation_prompt=True, bos_token="", eos_token=""
        )

    messages = [{**m, "content": neutralise(m["content"], template)} for m in messages]
    try:
        return apply(messages)
    except TemplateError:
        if len(messages) < 2 or messages[0]["role"] != "system":
            raise
        system, first, *rest = messages
        return apply([{**first, "content": f"{system['content']}\n\n{first['content']}"}, *rest])


def render(template: str, system: str, user: str) -> str:
    """``render_messages`` for one system and one user turn."""
    return render_messages(
        template, [{"role": "system", "content": system}, {"role": "user", "content": user}]
    )


TURN_MARK = "\x00PANZA-TURN\x00"


def turn_ends(template: str, eos: str = "") -> list[str]:
    """The text that closes an assistant turn in this chat template (``<|im_end|>``,
    ``<|eot_id|>``, ``<end_of_turn>``, ``<|end|>``, ``</s>``...), plus ``eos``: drafting
    stops there. Read off the template by rendering an assistant turn and taking what
    follows its content up to the first whitespace, so no list of families is kept here.
    """
    stops = [eos] if eos else []
    try:
        text = _compile(template).render(
            messages=[{"role": "user", "content": "u"},
                      {"role": "assistant", "content": TURN_MARK}],
            add_generation_prompt=False, bos_token="", eos_token=eos,
        )  # fmt: skip
    except Exception:  # noqa: BLE001 - a template that cannot render a turn gives no stop
        return stops
    tail = text.split(TURN_MARK, 1)[1] if TURN_MARK in text else ""
    # One token: "<|end|><|endoftext|>" (Phi-4) ends at the first closing ">".
    found = re.match(r"\s*(<[^<>\s]+>|\S+)", tail)
    mark = found.group(1) if found else ""
    if mark and mark not in stops:
        stops.insert(0, mark)
    return stops


def build(
    template: str, system: str, instruction: str, retrieved: Sequence[str] = (),
    preamble: str = "", thread: Sequence[tuple[str, str]] = (),
) -> str:  # fmt: skip
    """The full prompt text for one email: what the model sees before the email body."""
    return render(template, system, user_message(instruction, retrieved, preamble, thread))


def fingerprint(*parts: object) -> str:
    """Short SHA-256 (16 hex chars) of anything that shapes a prompt; a cache key."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]
