"""Reply headers and the conversation a reply's prompt carries (no model needed)."""

import pytest

from panza_core import prompting, replies
from panza_core.store import Message, Store
from training import playback

ME = "me@example.org"


@pytest.fixture()
def store(tmp_path):
    with Store(tmp_path / "p.sqlite3") as s:
        s.add_account("me", [ME])
        yield s


def test_reply_subject_never_stacks_prefixes():
    assert replies.reply_subject("Lunch") == "Re: Lunch"
    assert replies.reply_subject("RE: Re:  AW: Lunch") == "Re: Lunch"
    assert replies.reply_subject("Re[2]: Lunch") == "Re: Lunch"
    assert replies.reply_subject("Receipt") == "Re: Receipt"  # a word starting with "re"


def test_reply_and_reply_all_headers():
    parent = Message(
        "Shall we meet?", "Meeting", "<c@x>", from_addr="Tom Jones <tom@x.org>",
        to_addrs=f"Me <{ME}>, Ann <ann@x.org>", cc_addrs="bob@x.org, Tom <TOM@x.org>",
        refs="<a@x> <b@x>", in_reply_to="<b@x>", received=True,
    )  # fmt: skip
    plain = replies.reply_headers(parent, [ME])
    assert plain.to == "Tom Jones <tom@x.org>" and plain.cc == ""
    assert plain.subject == "Re: Meeting"
    assert (plain.in_reply_to, plain.references) == ("<c@x>", "<a@x> <b@x> <c@x>")
    everyone = replies.reply_headers(parent, [ME], reply_all=True)
    assert everyone.cc == "Ann <ann@x.org>, bob@x.org"  # never me, never To twice
    # Answering one's own email (a follow-up) goes to its recipients.
    mine = Message("See below", "Plan", "<d@x>", from_addr=ME, to_addrs="ann@x.org")
    assert replies.reply_headers(mine, [ME]).to == "ann@x.org"
    assert replies.reply_headers(mine, [ME]).references == "<d@x>"


def test_thread_before_keeps_the_parent_and_fits_earlier_mail_in_the_budget(store):
    long = "word " * (replies.MAX_THREAD_CHARS // 5)
    ann = "Ann <ann@x.org>"
    for message in (
        Message(long, "Plan", "<a@x>", received=True, date="2026-01-01", from_addr=ann),
        Message("Short question?", "Re: Plan", "<b@x>", from_addr=ME, refs="<a@x>",
                in_reply_to="<a@x>", date="2026-01-02"),
        Message("x" * 5000, "Re: Plan", "<c@x>", received=True, refs="<a@x> <b@x>",
                in_reply_to="<b@x>", from_addr=ann, date="2026-01-03"),
    ):  # fmt: skip
        store.add_message("me", message)
    parent = store.by_message_id("me", "<c@x>")
    turns = replies.thread_before(store, "me", parent)
    # The parent is cut to its cap; the short message fits, the long root does not.
    assert [t.author for t in turns] == [ME, "Ann"]
    assert turns[0].mine and not turns[1].mine
    assert len(turns[1].text) == replies.MAX_PARENT_CHARS
    assert sum(len(t.text) for t in turns) <= replies.MAX_THREAD_CHARS
    # A sent reply's context: its stored parent's thread; else its quote; else nothing.
    reply = Message("Fine.", "Re: Plan", "<e@x>", in_reply_to="<b@x>", refs="<a@x> <b@x>")
    assert [t.text for t in replies.context_of(store, "me", reply)] == ["Short question?"]
    quoting = Message("Fine.", "Re: x", "<f@x>", in_reply_to="<gone@x>", quoted="Is it?")
    assert replies.context_of(store, "me", quoting) == [
        replies.Turn(replies.QUOTED_AUTHOR, "Is it?")
    ]
    assert replies.context_of(store, "me", Message("Hello there", "Hi")) == []


def test_the_prompt_puts_the_conversation_before_the_instruction():
    thread = [("Ann", "Can you come on Friday?"), ("me", "Probably."), ("Ann", "Great, 3pm?")]
    text = prompting.user_message("", ["an old email"], "", thread)
    assert text.index(prompting.RAG_HEADER) < text.index(prompting.THREAD_HEADER)
    assert text.index("FROM Ann:\nCan you come") < text.index("FROM me:\nProbably.")
    assert text.endswith(f"Instruction: {prompting.REPLY_INSTRUCTION}")
    one = prompting.user_message("decline politely", (), "", thread[-1:])
    assert prompting.PARENT_HEADER in one and one.endswith("Instruction: decline politely")
    assert prompting.user_message("say hi") == "Instruction: say hi"  # new emails unchanged


def test_playback_reads_a_reply_with_the_email_it_answers():
    template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"
    reply = Message("Hi Sam,\n\nYes, Tuesday works for me.\n\nJo", "Re: Tuesday")
    prompt = playback.playback_prompt(template, reply, "Can we meet on Tuesday?")
    assert "It answers this email:\nCan we meet on Tuesday?" in prompt
    assert prompt.endswith(f"{playback.REPLY_PRIMER} to Sam")
    new = playback.playback_prompt(template, reply)
    assert "It answers" not in new and new.endswith(f"{playback.PRIMER} to Sam")


def test_to_is_suggested_from_the_names_in_an_instruction():
    mail = [
        Message("a", to_addrs="Priya Raman <priya.raman@x.org>, Tom <tom@x.org>"),
        Message("b", to_addrs="priya.raman@x.org"),
        Message("c", to_addrs="Priya Shah <ps@y.org>"),
        Message("d", from_addr="Priyanka <priyanka@z.org>", received=True),
        Message("e", from_addr=f"Me <{ME}>", received=True),
    ]
    book = replies.address_book(mail)
    assert book[0] == ("Priya Raman", "priya.raman@x.org", 2)
    found = replies.suggest_to(book, "Tell Priya the drains are done", [ME])
    assert found == ["Priya Raman <priya.raman@x.org>", "Priya Shah <ps@y.org>"]
    assert replies.suggest_to(book, "Ask tom and Me about it", [ME]) == []  # lower-case, mine
    assert replies.suggest_to(book, "Write to Tom", [ME]) == ["Tom <tom@x.org>"]


def test_first_names_for_greetings():
    for author, name in [
        ("Jane Doe", "Jane"), ("Doe, Jane", "Jane"), ("jane.doe@x.org", "Jane"),
        ("Wolsieffer, Carl L. ERDC-RDE-CRL-NH CIV via USRP-users", "Carl"),
        ("Marcus D. Leech via USRP-users", "Marcus"), ("", ""),
    ]:  # fmt: skip
        assert replies.first_name(author) == name
    template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"
    reply = Message("Yes, Tuesday works for me.", "Re: Tuesday")
    prompt = playback.playback_prompt(template, reply, "Can we meet?", to="Carl")
    assert prompt.endswith(f"{playback.REPLY_PRIMER} to Carl")


def test_a_drafted_subject_is_one_short_line_else_the_instruction():
    from panza_core.drafting import clean_subject

    assert clean_subject('Subject: "Drill back by Friday"\nHi Tom') == "Drill back by Friday"
    assert clean_subject("**Subject line:** Plants") == "Plants"
    long = "word " * 20
    assert clean_subject(long, "Ask Tom for the drill back before Friday or else Monday.") == (
        "Ask Tom for the drill back before Friday or else"
    )  # at most ten words
    assert clean_subject("Dear Tom,", "Thank Kofi.") == "Thank Kofi"
    assert clean_subject("Hi,", "Tell Priya the call moves") == "Tell Priya the call moves"
    assert clean_subject("Hello there", "x") == "x"
    assert clean_subject("", "") == ""


@pytest.mark.slow
def test_cli_drafts_a_reply_by_message_id(marcus_ws):
    import json

    from typer.testing import CliRunner

    from panza_tui.cli import app

    store = marcus_ws.store
    parent = next(
        m for m in store.messages("marcus", received=True)
        if m.refs and store.replies_to("marcus", m.message_id)
    )  # fmt: skip
    listed = CliRunner().invoke(app, ["mail", "-a", "marcus", "--received", "--json"])
    assert listed.exit_code == 0 and parent.message_id in listed.stdout
    result = CliRunner().invoke(
        app, ["draft", "-a", "marcus", "--reply-to", parent.message_id, "--all", "--json"],
        env={"PANZA_DRAFTING__MAX_TOKENS": "24"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout[result.stdout.index("{") :])
    assert out["headers"]["in_reply_to"] == parent.message_id
    assert out["headers"]["references"].split()[-1] == parent.message_id
    assert out["headers"]["subject"] == replies.reply_subject(parent.subject)
    assert out["thread"][-1]["text"] == parent.text[: replies.MAX_PARENT_CHARS]
    assert "subject" not in out  # a reply's subject is its parent's
    missing = CliRunner().invoke(app, ["draft", "-a", "marcus", "--reply-to", "<nope@x>"])
    assert missing.exit_code != 0
