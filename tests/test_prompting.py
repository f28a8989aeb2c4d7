"""The prompt is the same text, and the same tokens, in training and in drafting."""

import os

import pytest

from panza_core import models, prompting


def test_user_message_layout():
    text = prompting.user_message("Thank Tom", ["Hi A,\nfirst", "Hi B,\nsecond"], "I am Maya.")
    assert text == (
        "I am Maya.\n\n" + prompting.RAG_HEADER + "\n\nEMAIL 1:\nHi A,\nfirst\n\n"
        "EMAIL 2:\nHi B,\nsecond\n\nInstruction: Thank Tom"
    )
    assert prompting.user_message("Thank Tom") == "Instruction: Thank Tom"


@pytest.mark.slow
def test_render_matches_transformers_chat_template(workspace):
    from training import base_model

    _, tokenizer = base_model.load(workspace.llm)
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U\nV"}]
    ours = prompting.render(workspace.chat_template, "S", "U\nV")
    theirs = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert ours == theirs


@pytest.mark.slow
def test_training_and_llama_cpp_tokenise_the_prompt_identically(workspace):
    from panza_core import llama
    from panza_core.store import Message
    from training import base_model, dataset

    _, tokenizer = base_model.load(workspace.llm)
    message = Message(text="Hi Tom,\n\nThanks for the drill!\n\nCheers,\nMaya", subject="Drill")
    example = dataset.encode(
        tokenizer,
        workspace.chat_template,
        "system words",
        "I am Maya.",
        message,
        "Thank Tom for the drill",
        512,
        retrieved=["Hey Tom!\nDo you still have my drill?"],
    )
    prompt = prompting.build(
        workspace.chat_template,
        "system words",
        "Thank Tom for the drill",
        ["Hey Tom!\nDo you still have my drill?"],
        "I am Maya.",
    )
    llm = llama.load(models.resolve_llm("embedded").path, n_ctx=512)
    theirs = llm.tokenize(prompt.encode(), add_bos=llm._model.add_bos_token(), special=True)
    n_prompt = example.labels.count(-100)
    assert example.input_ids[:n_prompt] == theirs
    assert example.input_ids[-1] == tokenizer.eos_token_id  # the email ends the turn
    assert tokenizer.decode(example.input_ids[n_prompt:-1]) == message.text
    for text in ("Room 101 on 12/03/2026 at 14:30, 2500 EUR", "Grüße — café 日本語\n\n  x"):
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == llm.tokenize(
            text.encode(), add_bos=False, special=True
        )


def _template(*parts: str) -> str:
    from tests.conftest import shared

    return shared("tokenizers", *parts).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("parts", "end"),
    [
        (("llama-3", "meta-llama-Llama-3.1-8B-Instruct.jinja"), "<|eot_id|>"),
        (("qwen2.5", "Qwen-Qwen2.5-7B-Instruct.jinja"), "<|im_end|>"),
        (("phi-3", "microsoft-Phi-3.5-mini-instruct.jinja"), "<|end|>"),
        (("gemma-2", "google-gemma-2-2b-it.jinja"), "<end_of_turn>"),
    ],
)
def test_drafting_stops_where_the_models_own_template_ends_a_turn(parts, end):
    assert prompting.turn_ends(_template(*parts))[0] == end


def test_the_fallback_chatml_template_stops_at_im_end():
    assert prompting.turn_ends(models.CHATML_TEMPLATE) == ["<|im_end|>"]


def test_phi4_turn_end_is_one_token_not_the_run_of_specials_after_it():
    import json

    from tests.conftest import shared

    config = json.loads(shared("tokenizers", "phi-4-mini", "tokenizer_config.json").read_text())
    assert prompting.turn_ends(config["chat_template"], "<|endoftext|>") == [
        "<|end|>", "<|endoftext|>",
    ]  # fmt: skip


def test_a_template_without_a_system_role_gets_the_system_text_in_the_user_turn():
    text = prompting.render(_template("gemma-2", "google-gemma-2-2b-it.jinja"), "SYS", "hello")
    assert text.endswith("<start_of_turn>user\nSYS\n\nhello<end_of_turn>\n<start_of_turn>model\n")


def test_a_gguf_chat_template_is_read_once_and_kept_in_the_cache(home, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("PANZA_CACHE", str(tmp_path / "cache"))  # this test's own

    from gguf import GGUFReader

    embedded = models.resolve_llm("embedded").path
    field = GGUFReader(embedded).fields["tokenizer.chat_template"]
    theirs = bytes(field.parts[field.data[0]]).decode("utf-8")
    copy = tmp_path / "model.gguf"
    shutil.copyfile(embedded, copy)
    read = models._gguf_chat_template(copy)
    assert read == theirs
    kept = list((models.locations.cache_dir() / "chat-templates").glob("*.json"))
    assert len(kept) == 1
    kept[0].write_text('{"template": "kept"}')  # the cache, not the file, answers now
    assert models._gguf_chat_template(copy) == "kept"
    copy.write_bytes(copy.read_bytes())  # the file changed (mtime): read it again
    os.utime(copy, ns=(1, 1))
    assert models._gguf_chat_template(copy) == theirs
