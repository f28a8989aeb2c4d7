"""Inbox, threads and replies in the TUI, on a real mailing-list member's mail
(``marcus_ws``: usrp-users imported as patchvonbraun@gmail.com)."""

from __future__ import annotations

import pytest

from tests.helpers import settled


def answered(store):
    """A received email Marcus answered, in a thread of at least three emails."""
    for message in store.messages("marcus", received=True):
        thread = store.thread("marcus", message.thread_id)
        if len(thread) >= 3 and store.replies_to("marcus", message.message_id):
            return message
    raise AssertionError("no answered thread in the fixture")


async def test_inbox_thread_view_and_reply_headers(marcus_ws):
    from textual.widgets import Input, Static

    from panza_tui.tui.app import PanzaApp
    from panza_tui.tui.screens.compose import ComposeScreen
    from panza_tui.tui.widgets.mail_list import MailList

    store = marcus_ws.store
    target = answered(store)
    app = PanzaApp(account="marcus", workspace=marcus_ws)
    async with app.run_test(size=(130, 40)) as pilot:
        await settled(app, pilot)
        table = app.screen.query_one(MailList)
        received = store.count_messages("marcus", received=True)
        assert table.row_count == received  # the inbox opens first
        assert app.screen.query_one("#mail-side").border_title == f"Inbox ({received})"
        await pilot.press("s")
        await settled(app, pilot)
        assert table.row_count == store.count_messages("marcus")
        await pilot.press("i")
        await settled(app, pilot)
        table.move_cursor(row=table.get_row_index(str(target.id)))
        await settled(app, pilot)
        await pilot.press("t")
        await pilot.pause()
        turns = app.screen.query("#thread Static")
        body = "\n".join(str(t.render()) for t in turns)
        thread = store.thread("marcus", target.thread_id)
        assert len(turns) == len(thread)
        # Oldest first, his own emails marked as "you", the selected one marked.
        starts = [body.index(m.text.splitlines()[0][:30]) for m in thread]
        assert starts == sorted(starts)
        assert body.count("you ·") == sum(not m.received for m in thread) >= 1
        assert body.count("▶") == 1

        await pilot.press("r")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ComposeScreen) and screen.reply_to.id == target.id
        sender = target.from_addr.split("<")[-1].rstrip(">")
        assert sender in screen.query_one("#to", Input).value
        assert screen.query_one("#subject", Input).value.startswith("Re: ")
        assert "Re: Re:" not in screen.query_one("#subject", Input).value
        shown = str(screen.query_one("#parent-text", Static).render())
        assert shown.startswith(target.text[:30])


@pytest.mark.slow
async def test_a_reply_streams_beside_retrieved_emails_and_saves_threaded(marcus_ws, monkeypatch):
    from collections import Counter

    from textual.widgets import Input, TextArea

    from panza_core import replies
    from panza_tui.tui.app import PanzaApp

    ws = marcus_ws.with_config(drafting={"max_tokens": 40})
    ws.update_index("marcus")
    target = answered(ws.store)
    calls: Counter[str] = Counter()  # the reply's context is read once, for the request
    for name in ("thread_before", "reply_headers"):
        real = getattr(replies, name)
        monkeypatch.setattr(replies, name, lambda *a, _f=real, _n=name, **k: (
            calls.update([_n]), _f(*a, **k))[1])  # fmt: skip
    app = PanzaApp(account="marcus", workspace=ws)
    async with app.run_test(size=(130, 40)) as pilot:
        await pilot.pause()
        app.open_compose("marcus", reply_to=target)
        await pilot.pause()
        screen = app.screen
        await pilot.press("enter")  # no instruction: a reply may have none
        await settled(app, pilot)
        text = screen.query_one("#draft", TextArea).text
        assert text.strip() and screen.retrieved
        assert all(r.id != target.id for r in screen.retrieved)
        await pilot.press("ctrl+s")
        await pilot.pause()
        saved = ws.store.drafts("marcus")[0]
        assert saved.text == text and saved.in_reply_to == target.message_id
        assert saved.refs.split()[-1] == target.message_id
        assert saved.subject == screen.query_one("#subject", Input).value
    # typed on, drafted, saved: the conversation and the headers were each built once
    assert calls == {"thread_before": 1, "reply_headers": 1}, calls
