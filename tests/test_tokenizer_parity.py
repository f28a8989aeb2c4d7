"""Phi-3's vocabulary against llama.cpp's own expected tokenizations
(../shared/data/tokenizers/phi-3/ggml-vocab-phi-3.gguf.inp/.out, from llama.cpp's test suite):
the llama.cpp that drafts and the Hugging Face tokenizer that training uses must both give
exactly those ids, for the 46 texts (spaces, tabs, newlines, accents, CJK, emoji, code)."""

from __future__ import annotations

import pytest

from tests.conftest import shared

SEPARATOR = "\n__ggml_vocab_test__\n"


def _cases() -> list[tuple[str, list[int]]]:
    folder = shared("tokenizers", "phi-3")
    texts = (folder / "ggml-vocab-phi-3.gguf.inp").read_text(encoding="utf-8").split(SEPARATOR)
    texts = texts[:-1] if texts[-1] == "" else texts
    outs = (folder / "ggml-vocab-phi-3.gguf.out").read_text(encoding="utf-8").splitlines()
    assert len(texts) == len(outs) == 46
    return [(t, [int(x) for x in o.split()]) for t, o in zip(texts, outs, strict=True)]


def test_llama_cpp_tokenizes_phi3_as_llama_cpp_expects():
    from panza_core.llama import import_llama_cpp

    llama_cpp = import_llama_cpp()
    vocab = shared("tokenizers", "phi-3", "ggml-vocab-phi-3.gguf")
    llm = llama_cpp.Llama(model_path=str(vocab), vocab_only=True, verbose=False)
    wrong = [(text, ids) for text, ids in _cases()
             if llm.tokenize(text.encode(), add_bos=False, special=False) != ids]  # fmt: skip
    assert not wrong, wrong[:3]


def test_the_training_tokenizer_gives_the_same_ids():
    pytest.importorskip("transformers")
    from panza_core.models import ModelRef
    from training.base_model import load_tokenizer

    tokenizer = load_tokenizer(ModelRef("hf", shared("tokenizers", "phi-3")))
    wrong = [(text, ids) for text, ids in _cases()
             if tokenizer(text, add_special_tokens=False)["input_ids"] != ids]  # fmt: skip
    assert not wrong, wrong[:3]
