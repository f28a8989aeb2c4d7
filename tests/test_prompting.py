"""The prompt is the same text, and the same tokens, in training and in drafting."""

import pytest

from panza_tui.core import models, prompting


def test_user_message_layout():
    text = prompting.user_message("Thank Tom", ["Hi A,\nfirst", "Hi B,\nsecond"], "I am Maya.")
    assert text == (
        "I am Maya.\n\n" + prompting.RAG_HEADER + "\n\nEMAIL 1:\nHi A,\nfirst\n\n"
        "EMAIL 2:\nHi B,\nsecond\n\nInstruction: Thank Tom"
    )
    assert prompting.user_message("Thank Tom") == "Instruction: Thank Tom"


@pytest.mark.slow
def test_render_matches_transformers_chat_template(workspace):
    from training import base

    _, tokenizer = base.load(workspace.llm)
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U\nV"}]
    ours = prompting.render(workspace.chat_template, "S", "U\nV")
    theirs = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert ours == theirs


@pytest.mark.slow
def test_training_and_llama_cpp_tokenise_the_prompt_identically(workspace):
    from panza_tui.core import llama
    from panza_tui.core.store import Message
    from training import base, dataset

    _, tokenizer = base.load(workspace.llm)
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
