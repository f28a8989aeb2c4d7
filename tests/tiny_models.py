"""Tiny random-weight models of each architecture Panza supports, built locally from a config
(2 layers, hidden 64) with the real vocabulary of the family from ../shared/data/tokenizers.

Byte-level BPE vocabularies there come as vocab/merges files without tokenizer.json, so the
tokenizer is assembled with the ``tokenizers`` library from the family's published
pre-tokenizer regex (as in its tokenizer.json), added tokens and BOS rule: llama.cpp's
converter recognises the pre-tokenizer by hashing how the tokenizer splits a fixed text, so
a wrong regex fails the conversion instead of passing unnoticed. There is no Gemma
vocabulary there: Gemma models get a small SentencePiece model trained here on real mail,
with Gemma's special tokens in Gemma's places (a synthetic vocabulary, said so in the table).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import shared

LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
GPT4O_REGEX = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+"
    r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
)
GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]

TEXT = (
    "Hi Kofi, room 101 on 12/03/2026 at 14:30? Grüße aus Zürich, café déjà vu. "
    "会议改到周三 下午三点。 🚀🎉 don't we'll I'M\n\n    def f(x): return x**2  # ok\n"
)
"""Multilingual text with digits, emoji, accents, CJK and code, for tokenizer parity."""


@dataclass(frozen=True)
class Family:
    """One architecture and the vocabulary its tiny model carries."""

    arch: str  # transformers model_type
    vocab: str  # where the vocabulary comes from, for the README table
    name: str  # the folder name; llama.cpp reads Phi-3 token rules off a "phi3" in it
    config: dict[str, Any] = field(default_factory=dict)


FAMILIES = {
    "llama": Family("llama", "Llama-3 (real)", "tiny-llama-3", {
        "vocab_size": 128256, "bos_token_id": 128000, "eos_token_id": 128009,
        "max_position_embeddings": 131072,
        "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                            "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                            "original_max_position_embeddings": 8192},
        "tie_word_embeddings": True}),
    "mistral": Family("mistral", "Mistral-7B-Instruct v0.1 SentencePiece (real)", "tiny-mistral", {
        "vocab_size": 32000, "bos_token_id": 1, "eos_token_id": 2, "sliding_window": None}),
    "qwen2": Family("qwen2", "Qwen2.5 (real)", "tiny-qwen2.5", {
        "vocab_size": 151936, "eos_token_id": 151645, "tie_word_embeddings": True}),
    "qwen3": Family("qwen3", "Qwen3 (real)", "tiny-qwen3", {
        "vocab_size": 151936, "eos_token_id": 151645, "tie_word_embeddings": True,
        "head_dim": 16}),
    "phi3": Family("phi3", "Phi-4-mini (real)", "tiny-phi-4-mini", {
        "vocab_size": 200064, "bos_token_id": 199999, "eos_token_id": 200020,
        "pad_token_id": 199999, "tie_word_embeddings": True, "partial_rotary_factor": 0.75}),
    "gemma2": Family("gemma2", "SentencePiece trained here (synthetic)", "tiny-gemma-2", {
        "vocab_size": 1024, "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0,
        "head_dim": 16, "query_pre_attn_scalar": 16, "sliding_window": 64}),
    "gemma3_text": Family("gemma3_text", "SentencePiece trained here (synthetic)", "tiny-gemma-3", {
        "vocab_size": 1024, "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0,
        "head_dim": 16, "query_pre_attn_scalar": 16, "sliding_window": 64}),
}  # fmt: skip


def _byte_level(folder: Path, vocab_file: str, merges_file: str, regex: str, *, nfc: bool,
                ignore_merges: bool) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """A byte-level BPE tokenizer from the vocab and merges files in ``folder`` (with its
    tokenizer_config.json's added tokens), and that config."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    config = json.loads((folder / "tokenizer_config.json").read_text())
    vocab = json.loads((folder / vocab_file).read_text())
    merges = (folder / merges_file).read_text(encoding="utf-8").splitlines()
    pairs = [tuple(line.split(" ", 1)) for line in merges if line and not line.startswith("#")]
    tok = Tokenizer(models.BPE(vocab, pairs, ignore_merges=ignore_merges))
    if nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])  # fmt: skip
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    _add_tokens(tok, config)
    return tok, config


def _add_tokens(tok: Any, config: dict[str, Any]) -> None:
    from tokenizers import AddedToken

    for index, spec in sorted((int(k), v) for k, v in config["added_tokens_decoder"].items()):
        if tok.token_to_id(spec["content"]) == index:
            continue
        assert tok.get_vocab_size(with_added_tokens=True) == index, spec
        tok.add_tokens([AddedToken(spec["content"], special=spec.get("special", True),
                                   normalized=spec.get("normalized", False))])  # fmt: skip


def _save_fast(tok: Any, folder: Path, config: dict[str, Any], template: str | None) -> None:
    from transformers import PreTrainedTokenizerFast

    keep = {k: config[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token")
            if isinstance(config.get(k), str)}  # fmt: skip
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **keep)
    if template:
        fast.chat_template = template
    fast.save_pretrained(folder)


def _tokenizer(arch: str, folder: Path, work: Path) -> None:
    base = shared("tokenizers")
    if arch == "llama":
        from tokenizers import processors

        tok, config = _byte_level(base / "llama-3", "encoder.json", "vocab.bpe", LLAMA3_REGEX,
                                  nfc=False, ignore_merges=True)  # fmt: skip
        tok.post_processor = processors.TemplateProcessing(
            single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 128000)]
        )
        template = (base / "llama-3/meta-llama-Llama-3.1-8B-Instruct.jinja").read_text()
        _save_fast(tok, folder, {**config, "eos_token": "<|eot_id|>"}, template)
    elif arch in ("qwen2", "qwen3"):
        sub = "qwen2.5" if arch == "qwen2" else "qwen3"
        tok, config = _byte_level(base / sub, "vocab.json", "merges.txt", QWEN2_REGEX,
                                  nfc=True, ignore_merges=False)  # fmt: skip
        _save_fast(tok, folder, config, config.get("chat_template"))
    elif arch == "phi3":
        tok, config = _byte_level(base / "phi-4-mini", "vocab.json", "merges.txt", GPT4O_REGEX,
                                  nfc=False, ignore_merges=False)  # fmt: skip
        _save_fast(tok, folder, config, config.get("chat_template"))
        # The converter picks Phi-4's byte-level path by this class name.
        saved = json.loads((folder / "tokenizer_config.json").read_text())
        saved["tokenizer_class"] = "GPT2Tokenizer"
        (folder / "tokenizer_config.json").write_text(json.dumps(saved))
    elif arch == "mistral":
        shutil.copy(base / "mistral-7b-instruct/tokenizer.model.v1", folder / "tokenizer.model")
        _sentencepiece_config(folder, "LlamaTokenizer", "<s>", "</s>", MISTRAL_TEMPLATE,
                              legacy=True)  # fmt: skip
    else:
        _gemma_tokenizer(folder, work, arch)


def _gemma_tokenizer(folder: Path, work: Path, arch: str) -> None:
    import sentencepiece as spm

    corpus = work / "corpus.txt"
    lines = []
    for line in shared("panza", "david.jsonl").read_text(encoding="utf-8").splitlines()[:400]:
        lines.append(json.loads(line).get("email", ""))
    corpus.write_text("\n".join(lines) + "\n" + TEXT, encoding="utf-8")
    # Gemma's own layout: <mask> at 4, <start_of_turn>/<end_of_turn> at 106/107 (llama.cpp's
    # converter takes 107 as end of turn).
    user = ["<mask>", "<2mass>", "[@BOS@]", *(f"<unused{i}>" for i in range(99)),
            "<start_of_turn>", "<end_of_turn>"]  # fmt: skip
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(work / "gemma"), vocab_size=1024, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
        user_defined_symbols=user, split_digits=True, add_dummy_prefix=False,
        remove_extra_whitespaces=False, normalization_rule_name="identity",
        allow_whitespace_only_pieces=True, minloglevel=2,
    )  # fmt: skip
    shutil.copy(work / "gemma.model", folder / "tokenizer.model")
    template = shared("tokenizers", "gemma-2", "google-gemma-2-2b-it.jinja").read_text()
    # As in Gemma's own tokenizer_config.json: the turn markers are special tokens.
    special = {0: "<pad>", 1: "<eos>", 2: "<bos>", 3: "<unk>", 4: "<mask>",
               106: "<start_of_turn>", 107: "<end_of_turn>"}  # fmt: skip
    _sentencepiece_config(folder, "GemmaTokenizer", "<bos>", "<eos>", template, pad="<pad>",
                          added=special)  # fmt: skip


def _sentencepiece_config(
    folder: Path,
    cls: str,
    bos: str,
    eos: str,
    template: str,
    pad: str | None = None,
    legacy: bool = False,
    added: dict[int, str] | None = None,
) -> None:
    """A tokenizer for the ``tokenizer.model`` in ``folder``, saved as the family's own
    repositories ship it: tokenizer.json beside tokenizer.model. transformers builds it from
    tokenizer.model and tokenizer_config.json in a folder of their own (its constructors given
    only ``vocab_file`` build an empty one, and beside a config.json of model type "mistral"
    it picks a tokenizer without Llama's dummy prefix)."""
    from transformers import AutoTokenizer

    config = {"tokenizer_class": cls, "bos_token": bos, "eos_token": eos, "unk_token": "<unk>",
              "add_bos_token": True, "add_eos_token": False, "legacy": legacy,
              "chat_template": template}  # fmt: skip
    if pad:
        config["pad_token"] = pad
    if added:
        config["added_tokens_decoder"] = {
            str(i): {"content": text, "special": True, "normalized": False, "lstrip": False,
                     "rstrip": False, "single_word": False}
            for i, text in added.items()
        }  # fmt: skip
    build = folder.parent / f"{folder.name}-tokenizer"
    build.mkdir(exist_ok=True)
    shutil.copy(folder / "tokenizer.model", build / "tokenizer.model")
    (build / "tokenizer_config.json").write_text(json.dumps(config))
    AutoTokenizer.from_pretrained(build).save_pretrained(folder)
    if legacy:
        # Mistral's and Llama-2's repositories ship a tokenizer.json from transformers 4,
        # whose normalizer does what sentencepiece does (a dummy "▁" prefix, every space a
        # "▁"); transformers 5 writes a Metaspace pre-tokenizer instead, which splits runs of
        # spaces otherwise. The test model carries the file its family ships.
        data = json.loads((folder / "tokenizer.json").read_text())
        data["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        ]}  # fmt: skip
        data["pre_tokenizer"] = None
        (folder / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False))
    # transformers 5 keeps added tokens in tokenizer.json only; the families' own
    # tokenizer_config.json lists them, and llama.cpp's converter reads them from there.
    saved = json.loads((folder / "tokenizer_config.json").read_text())
    saved["added_tokens_decoder"] = config.get("added_tokens_decoder", {})
    (folder / "tokenizer_config.json").write_text(json.dumps(saved))


def build(arch: str, folder: Path, seed: int = 0) -> Path:
    """Write a tiny random-weight model of ``arch`` (2 layers, hidden 64, 4 query and 2 key/
    value heads) with its family's tokenizer to ``folder``; returns ``folder``.

    Weights are drawn with a larger spread than pretrained init (std 0.2, not 0.02), so the
    next-token logits have clear leaders: with near-uniform logits, top-1 agreement between
    two correct implementations is decided by float rounding.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    family = FAMILIES[arch]
    folder.mkdir(parents=True, exist_ok=True)
    work = folder.parent / f"{folder.name}-work"
    work.mkdir(exist_ok=True)
    _tokenizer(arch, folder, work)
    config = AutoConfig.for_model(
        family.arch, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2,
        **{"max_position_embeddings": 2048, "initializer_range": 0.2, **family.config},
    )  # fmt: skip
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():  # norms start at 1 (or 0 for Gemma's 1 + w): give them a spread too
        for param in model.parameters():
            if param.ndim == 1:
                param.add_(torch.randn_like(param) * 0.1)
    model.save_pretrained(folder, safe_serialization=True)
    return folder
