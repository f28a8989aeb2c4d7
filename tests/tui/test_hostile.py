"""Mail from a stranger never acts in the terminal, never crashes the app (issue 30): the
hostile corpus (``tests.hostile``) through every screen that shows mail, server or model
text, with the pilot. What is rendered is the cleaned input, brackets visible, and no
segment carries a link or an action or a character the terminal acts on."""

from __future__ import annotations

import pytest

from panza_core.untrusted import clean, clean_line
from tests.helpers import settled, until_async
from tests.hostile import (
    HOSTILE,
    MALLORY,
    content_actions,
    hostile_messages,
    screen_problems,
)


@pytest.fixture()
def hostile_ws(demo_ws, tmp_path):
    """The demo account with one received email from Mallory per hostile string."""
    from sync.importer import import_path

    folder = tmp_path / "hostile"
    folder.mkdir()
    for number, raw in enumerate(hostile_messages()):
        (folder / f"{number:02d}.eml").write_bytes(raw)
    report = import_path(demo_ws.store, "demo", folder)
    assert report.counts["received"] == len(HOSTILE)
    return demo_ws


def _visual(widget):
    return widget.visual if hasattr(widget, "visual") else widget.render()


async def test_every_hostile_email_shows_as_plain_text_in_the_list_preview_and_thread(
    hostile_ws,
):
    from textual.widgets import Static

    from panza_tui.tui.app import PanzaApp
    from panza_tui.tui.widgets.mail_list import MailList

    app = PanzaApp(account="demo", workspace=hostile_ws)
    async with app.run_test(size=(140, 40)) as pilot:
        await settled(app, pilot)  # opening previews the newest email: no MarkupError
        table = app.screen.query_one(MailList)
        mallory = {m.id: m for m in hostile_ws.store.messages("demo", received=True)
                   if m.from_addr == MALLORY}  # fmt: skip
        assert len(mallory) == len(HOSTILE)
        seen = set()
        for _ in range(table.row_count):
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            message = hostile_ws.store.message(int(key))
            cells = table.get_row(key)
            assert cells[2].plain == clean_line(message.subject)
            assert not any(content_actions(cell) for cell in cells)
            body = app.screen.query_one("#preview-body", Static)
            assert str(_visual(body)) == clean(message.text)
            head = app.screen.query_one("#preview-head", Static)
            assert clean_line(message.subject) in str(_visual(head))
            assert not content_actions(_visual(body)) and not content_actions(_visual(head))
            assert screen_problems(app) == []
            seen.add(message.id)
            await pilot.press("down")
            await pilot.pause()
        assert set(mallory) <= seen
        for text in ("[EXTERNAL] Quarterly numbers", "[Sent from my phone]", "[/usr/bin"):
            assert any(text in m.text for m in mallory.values())  # kept in the store as sent

        await pilot.press("t")  # the conversation view renders each email as a "turn"
        await pilot.pause()
        turns = list(app.screen.query("#thread Static"))
        assert turns and all(not content_actions(_visual(t)) for t in turns)
        assert screen_problems(app) == []


async def test_a_stray_closing_bracket_in_the_newest_email_does_not_stop_the_app(workspace):
    from textual.widgets import Static

    from panza_tui.tui.app import PanzaApp
    from tests.helpers import raw_email

    workspace.store.add_account("me", ["me@example.org"])
    from sync.importer import import_path

    path = workspace.store.path.parent / "stray.eml"
    path.write_bytes(raw_email("the binary is in [/usr/bin for now", sender=MALLORY))
    import_path(workspace.store, "me", path)
    app = PanzaApp(account="me", workspace=workspace)
    async with app.run_test() as pilot:
        await pilot.pause()
        body = str(_visual(app.screen.query_one("#preview-body", Static)))
        assert "the binary is in [/usr/bin for now" in body


@pytest.mark.slow
async def test_a_reply_shows_the_hostile_email_and_its_headers_as_plain_text(
    hostile_ws, monkeypatch
):
    from textual.widgets import Input, Static

    from panza_core.drafting import Preparer
    from panza_tui.tui.app import PanzaApp
    from panza_tui.tui.screens.compose import ComposeScreen

    # No model: this test is about what the screen shows of the email answered.
    monkeypatch.setattr(Preparer, "typed", lambda self, text: None)
    app = PanzaApp(account="demo", workspace=hostile_ws)
    mallory = [m for m in hostile_ws.store.messages("demo", received=True)
               if m.from_addr == MALLORY]  # fmt: skip
    async with app.run_test(size=(140, 40)) as pilot:
        for message in mallory:
            app.open_compose("demo", reply_to=message)
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ComposeScreen)
            parent = screen.query_one("#parent-text", Static)
            assert str(_visual(parent)) == clean(message.text)
            quote = screen.query_one("#parent")
            assert "Mallory" in quote._border_title.plain
            assert not content_actions(quote._border_title)
            subject = screen.query_one("#subject", Input).value
            assert subject == clean_line(f"Re: {message.subject}")
            screen.append("model says [@click=app.quit]hi[/] \x1b]52;c;eA==\x07", 0)
            await pilot.pause()
            assert "[@click=app.quit]hi[/]" in screen.query_one("#draft").text
            assert "\x1b" not in screen.query_one("#draft").text
            screen.set_status(message.subject)
            assert str(_visual(screen.query_one("#status"))) == clean_line(message.subject)
            assert screen_problems(app) == []
            await pilot.press("escape")
            await pilot.pause()


async def test_retrieved_emails_notifications_model_and_evaluation_screens_show_plain_text(
    hostile_ws,
):
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable, Static

    from panza_core.drafting import Retrieved
    from panza_tui.tui.app import PanzaApp
    from panza_tui.tui.widgets.retrieved import RetrievedPanel

    class Panel(App):
        def compose(self) -> ComposeResult:
            yield RetrievedPanel()

    panel_app = Panel()
    async with panel_app.run_test(size=(100, 60)) as pilot:
        panel = panel_app.query_one(RetrievedPanel)
        panel.show([Retrieved(id=n, score=0.5, subject=t, text=f"past email: {t}")
                    for n, t in enumerate(HOSTILE)])  # fmt: skip
        await pilot.pause()
        shown = list(panel.query(".retrieved"))
        assert len(shown) == len(HOSTILE)
        for static, text in zip(shown, HOSTILE, strict=True):
            assert clean_line(text) in str(_visual(static))
            assert not content_actions(_visual(static))
        assert screen_problems(panel_app) == []

    store = hostile_ws.store
    run = store.start_run("demo", "eval", "k", {})
    rows = [{"setting": text, "method": text, "bleu": 1.0, "chrf": 2.0, "rouge1": 3.0,
             "rouge2": 4.0, "rougeL": 5.0, "style_sim": 0.5} for text in HOSTILE[:4]]  # fmt: skip
    store.finish_run(run, "done", "/runs/[@click=app.quit]x[/]\x1b]0;t\x07", {"rows": rows})
    app = PanzaApp(account="demo", workspace=hostile_ws)
    async with app.run_test(size=(140, 60), notifications=True) as pilot:
        await pilot.pause()
        for text in HOSTILE:
            app.notify(text, title=text, timeout=60)
        assert await until_async(lambda: len(app.screen.query("Toast")) == len(HOSTILE), pilot)
        toasts = list(app.screen.query("Toast"))
        for toast in toasts:
            assert not content_actions(toast.render())
        assert screen_problems(app) == []

        await pilot.press("e")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert [c.plain for c in table.get_row_at(0)[:2]] == [clean_line(HOSTILE[0])] * 2
        files = str(_visual(app.screen.query_one("#eval-files", Static)))
        assert "/runs/[@click=app.quit]x[/]]0;t" in files
        assert screen_problems(app) == []
        await pilot.press("escape")

        from training.job import JobState, ModelJob, Outcome

        job = ModelJob(hostile_ws, "demo", stages=())
        app.jobs["demo"] = job
        await pilot.press("m")
        await pilot.pause()
        assert screen_problems(app) == []
        app._finish_job(job, Outcome(JobState.FAILED, f"{HOSTILE[0]} {HOSTILE[-3]}"))
        await settled(app, pilot)
        assert screen_problems(app) == []
