"""The TUI driven by Textual's pilot, on a real store and the real embedded models."""

from __future__ import annotations

import subprocess
import sys

import pytest

from panza_tui.cli.demo import ADDRESS
from tests.helpers import demo_messages, settled, until_async
from tests.sync.conftest import imap_server  # noqa: F401 - a fixture

EDITED_DRAFT = (
    "Hi Tom,\n\nCould you bring my drill back before Friday? Zoë needs it for the façade "
    "— the 8 mm bit too.\n\nCheers,\nMaya\n"
)


async def test_mail_list_filter_and_preview(demo_ws):
    from textual.widgets import Static

    from panza_tui.tui.app import PanzaApp
    from panza_tui.tui.widgets.mail_list import MailList

    app = PanzaApp(account="demo", workspace=demo_ws)
    async with app.run_test(size=(120, 36)) as pilot:
        await settled(app, pilot)
        table = app.screen.query_one(MailList)
        assert table.row_count == 1  # the inbox opens first: one email Maya received
        await pilot.press("s")
        await settled(app, pilot)
        assert table.row_count == 65
        assert app.focused is table
        await pilot.press("down", "down")
        highlighted = demo_ws.store.messages("demo")[2]
        body = app.screen.query_one("#preview-body", Static)
        assert str(body.render()).startswith(highlighted.text[:20])
        await pilot.press("slash", *"plants")
        await settled(app, pilot)
        assert 0 < table.row_count < 65
        assert app.screen.query_one("#filter").value == "plants"  # the "/" opened, not typed
        await pilot.press("escape")
        await settled(app, pilot)
        assert table.row_count == 65


async def test_empty_store_explains_what_to_do(workspace):
    from textual.widgets import Static

    from panza_tui.tui.app import PanzaApp

    app = PanzaApp(workspace=workspace)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert "panza import" in str(app.screen.query_one("#preview-body", Static).render())
        await pilot.press("c")  # compose without mail: a warning, no crash
        await pilot.pause()
        assert app.screen.__class__.__name__ == "MailScreen"


@pytest.mark.slow
async def test_compose_streams_a_draft_with_retrieved_emails_and_saves_it(demo_ws, monkeypatch):
    from textual.widgets import TextArea

    from panza_tui.tui.app import PanzaApp
    from panza_tui.tui.screens.compose import ComposeScreen

    demo_ws = demo_ws.with_config(drafting={"max_tokens": 40, "candidates": 1})
    demo_ws.update_index("demo")
    app = PanzaApp(account="demo", workspace=demo_ws)
    streamed: list[str] = []
    async with app.run_test(size=(130, 40)) as pilot:
        await pilot.press("c")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        original = screen.append
        monkeypatch.setattr(
            screen, "append", lambda piece, gen: (streamed.append(piece), original(piece, gen))
        )
        await pilot.press(*"Ask the neighbours to water my plants", "enter")
        await settled(app, pilot)
        text = screen.query_one("#draft", TextArea).text
        assert len(streamed) > 1 and text == "".join(streamed)
        assert screen.retrieved and screen.retrieved[0].subject == "Watering the plants"
        assert "tokens/s" in str(screen.query_one("#status").render())
        await pilot.press("ctrl+s")
        await pilot.pause()
        drafts = demo_ws.store.drafts("demo")
        assert len(drafts) == 1 and drafts[0].text == text
        assert drafts[0].instruction == "Ask the neighbours to water my plants"
        await pilot.press("ctrl+s")  # saving again updates the same draft
        await pilot.pause()
        assert len(demo_ws.store.drafts("demo")) == 1


@pytest.mark.slow
async def test_typing_evaluates_the_prompt_before_the_instruction(demo_ws):
    from panza_core import llama
    from panza_tui.tui.app import PanzaApp

    demo_ws = demo_ws.with_config(drafting={"max_tokens": 16, "candidates": 1})
    demo_ws.update_index("demo")
    app = PanzaApp(account="demo", workspace=demo_ws)
    async with app.run_test(size=(130, 40)) as pilot:
        await pilot.press("c")
        await pilot.pause()
        screen = app.screen
        await pilot.press(*"Ask the neighbours to water my plants")
        assert screen.preparer.idle(timeout=120)  # typing done, the preparation too
        drafter = app.drafter("demo")
        llm = drafter.load().llm
        typed = "Ask the neighbours to water my plants"
        retrieved = screen.preparer.retrieval_for(typed)
        prefix = drafter.prompt_prefix(screen.request.typed(typed), retrieved)
        assert list(llm._input_ids) == llama.prompt_tokens(llm, prefix)  # while typing
        sizes: list[int] = []
        original = llm.eval
        llm.eval = lambda tokens: (sizes.append(len(tokens)), original(tokens))[1]
        await pilot.press("enter")
        await settled(app, pilot)
        assert screen.query_one("#draft").text
        assert 0 < sizes[0] < 10  # on enter, the turn's end only
        assert [r.id for r in screen.retrieved] == [r.id for r in retrieved]  # as shown
        sizes.clear()
        await pilot.press("ctrl+r")  # regenerate: the whole prompt is still cached
        await settled(app, pilot)
        assert sizes[0] == llama.FRESH_TOKENS


@pytest.mark.slow
async def test_regenerating_mid_stream_keeps_only_the_new_draft(demo_ws):
    from textual.widgets import TextArea

    from panza_core.drafting import Drafter
    from panza_tui.tui.app import PanzaApp

    demo_ws = demo_ws.with_config(drafting={"max_tokens": 60, "candidates": 1})
    demo_ws.update_index("demo")
    app = PanzaApp(account="demo", workspace=demo_ws)
    async with app.run_test(size=(130, 40)) as pilot:
        await pilot.press("c")
        await pilot.pause()
        await pilot.press(*"Thank Kofi for the maples", "enter")
        area = app.screen.query_one("#draft", TextArea)
        assert await until_async(lambda: area.text, pilot)  # the first draft is streaming
        await pilot.press("ctrl+r")
        await settled(app, pilot)
        assert app.screen.attempt == 1
        text = area.text
        shown = app.screen.retrieved  # retrieved while typing: the prompt's past emails
    drafter = Drafter(demo_ws, "demo")
    request = drafter.request("Thank Kofi for the maples", retrieved=shown).attempt(1)
    expected = drafter.draft(request).draft
    assert text.strip() == expected


@pytest.mark.slow
async def test_candidates_best_first_with_their_fact_check_and_ctrl_n(demo_ws):
    from textual.widgets import Static, TextArea

    from panza_core.drafting import Draft
    from panza_core.untrusted import clean
    from panza_tui.tui.app import PanzaApp

    demo_ws = demo_ws.with_config(drafting={"max_tokens": 32, "candidates": 3})
    demo_ws.update_index("demo")
    app = PanzaApp(account="demo", workspace=demo_ws)
    async with app.run_test(size=(130, 40)) as pilot:
        await pilot.press("c")
        await pilot.pause()
        await pilot.press(*"Feed my cat Spike in March and thank Kofi", "enter")
        await settled(app, pilot)
        screen = app.screen
        area, status = screen.query_one("#draft", TextArea), screen.query_one("#status", Static)
        shown = screen.candidates
        assert len(shown) == 3 and sorted(shown, key=Draft.fact_rank) == shown
        assert {d.candidate for d in shown} == {0, 1, 2} and all(d.facts for d in shown)
        assert area.text.strip() == clean(shown[0].draft).strip()  # the best, not edited
        assert "candidate 1/3" in str(status.render()) and "facts carried" in str(status.render())
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert area.text.strip() == clean(shown[1].draft).strip()
        assert "candidate 2/3" in str(status.render())


async def test_evaluation_screen_shows_the_latest_eval_table(demo_ws):
    from textual.widgets import DataTable, Static

    from panza_tui.tui.app import PanzaApp

    app = PanzaApp(account="demo", workspace=demo_ws)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("e")
        await pilot.pause()
        assert "panza eval --account demo" in str(
            app.screen.query_one("#eval-head", Static).render()
        )
        await pilot.press("escape")
        # What training.evaluate stores with an eval run (its own tests cover the numbers).
        store = demo_ws.store
        for bleu in (1.0, 2.0):  # two runs: the screen shows the newer one
            run = store.start_run("demo", "eval", "k", {})
            rows = [
                {"setting": s, "method": m, "bleu": bleu, "chrf": 20.0, "rouge1": 30.0,
                 "rouge2": 9.0, "rougeL": 25.5, "style_sim": 0.512, "repeat6": 12.5,
                 "median_words": 41.0, "fact_recall": 0.75, "invented": 0.5, "copied": 0.25}
                for s, m in (("base", "none"), ("base+rag", "none"), ("finetuned", "lora"),
                             ("finetuned+rag", "lora"))
            ]  # fmt: skip
            real = {
                "repeat6": 0.0,
                "median_words": 25.5,
                "fact_recall": 0.9,
                "invented": 0.1,
                "copied": 0.0,
            }
            store.finish_run(run, "done", f"/runs/{run}",
                             {"n_test": 24, "rows": rows, "real": real})  # fmt: skip
        await pilot.press("e")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.row_count == 5
        assert [str(cell) for cell in table.get_row("finetuned+rag")] == [
            "finetuned+rag",
            "lora",
            "2.00",
            "20.00",
            "30.00",
            "9.00",
            "25.50",
            "0.512",
            "12",
            "41",
            "0.75",
            "0.50",
            "0.25",
        ]
        assert [str(cell) for cell in table.get_row("real")] == ["real emails"] + [""] * 7 + [
            "0",
            "26",  # 25.5 rounds half to even
            "0.90",
            "0.10",
            "0.00",
        ]
        assert "24 held-out emails" in str(app.screen.query_one("#eval-head", Static).render())
        assert f"/runs/{run}/eval.png" in str(app.screen.query_one("#eval-files", Static).render())


def test_mail_screen_snapshot(demo_ws, snap_compare):
    from panza_tui.tui.app import PanzaApp

    app = PanzaApp(account="demo", workspace=demo_ws)
    assert snap_compare(app, press=["s"], terminal_size=(110, 30))  # Sent: Maya's own mail


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return set(out.stdout.split())


def test_app_start_imports_no_heavy_library():
    loaded = _modules_after(
        "import panza_tui.tui.app, panza_tui.tui.screens.compose, panza_tui.cli, "
        "panza_tui.tui.screens.model, panza_tui.tui.screens.oauth_form"
    )
    assert not loaded & {"torch", "transformers", "llama_cpp", "sentence_transformers", "peft",
                         "googleapiclient", "google_auth_oauthlib"}  # fmt: skip


def test_core_never_imports_textual():
    loaded = _modules_after(
        "import sync.importer, training.playback, training.finetune, training.export, "
        "panza_core.store, panza_core.retrieval, panza_core.drafting"
    )
    assert "textual" not in loaded


@pytest.mark.slow
async def test_saving_puts_the_draft_in_the_server_drafts_folder(demo_ws, imap_server):  # noqa: F811
    from textual.widgets import TextArea

    from panza_core import secrets
    from panza_tui.tui.app import PanzaApp
    from sync import imap
    from tests.sync.test_drafts import read_drafts

    demo_ws.store.set_server("demo", imap.ImapServer(
        host="127.0.0.1", user=imap_server.user, port=imap_server.port, security="plain",
    ).to_json())  # fmt: skip
    secrets.set_secret("demo:imap", imap_server.secret)
    demo_ws = demo_ws.with_config(
        drafting={"max_tokens": 24, "candidates": 1}, retrieval={"top_k": 0}
    )
    app = PanzaApp(account="demo", workspace=demo_ws)
    async with app.run_test(size=(130, 40)) as pilot:
        await pilot.press("c")
        await pilot.pause()
        await pilot.click("#to")
        await pilot.press(*"tom@example.net")
        await pilot.click("#subject")
        await pilot.press(*"Drill")
        await pilot.click("#instruction")
        await pilot.press(*"Ask Tom for my drill back", "enter")
        await settled(app, pilot)
        area = app.screen.query_one("#draft", TextArea)
        assert area.text.strip()  # the model wrote something; what it wrote varies by host
        # The user edits the draft before saving: several lines and non-ASCII, so that the
        # CRLF line ends and the charset of the uploaded copy are exercised on every machine.
        area.text = EDITED_DRAFT
        await pilot.press("ctrl+s")
        await settled(app, pilot)
    ((message, _),) = read_drafts(imap_server)
    assert message["To"] == "tom@example.net" and message["Subject"] == "Drill"
    # IMAP carries CRLF line ends (RFC 3501); the text is otherwise exactly what was saved
    assert message.get_content().replace("\r\n", "\n").strip() == EDITED_DRAFT.strip()
    assert message.get_content_charset() == "utf-8"
    local = demo_ws.store.drafts("demo")[0]
    assert local.server_ref and local.server_error is None


async def test_accounts_screen_syncs_with_progress_tests_and_removes(demo_ws, imap_server):  # noqa: F811
    from textual.widgets import DataTable, ProgressBar

    from panza_core import secrets
    from panza_tui.tui.app import PanzaApp
    from panza_tui.tui.screens.accounts import AccountsScreen
    from sync import imap
    from tests.sync.conftest import append_all

    append_all(imap_server, "Sent", demo_messages())
    demo_ws.store.add_account("server", [ADDRESS])
    demo_ws.store.set_server("server", imap.ImapServer(
        host="127.0.0.1", user=imap_server.user, port=imap_server.port, security="plain",
    ).to_json())  # fmt: skip
    secrets.set_secret("server:imap", imap_server.secret)
    app = PanzaApp(account="demo", workspace=demo_ws)
    async with app.run_test(size=(130, 30)) as pilot:
        await pilot.press("a")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AccountsScreen)
        table = screen.query_one(DataTable)
        assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == ["demo", "server"]
        await pilot.press("down", "s")
        await settled(app, pilot)
        assert "65 new" in str(screen.query_one("#status").render())
        bar = screen.query_one(ProgressBar)
        assert bar.progress == bar.total == len(demo_messages())  # all 69 fetched, 65 kept
        assert str(table.get_row_at(1)[2]) == "65" and str(table.get_row_at(1)[3]) != "never"
        await pilot.press("t")
        await settled(app, pilot)
        notes = [n.message for n in app._notifications]
        assert any("login work" in m for m in notes), notes
        await pilot.press("delete")
        await pilot.pause()
        assert table.row_count == 2  # the first press only asks
        await pilot.press("delete")
        await pilot.pause()
        assert table.row_count == 1 and demo_ws.store.accounts() == ["demo"]
        assert secrets.get_secret("server:imap") is None


@pytest.mark.slow
async def test_adding_and_editing_an_imap_account_in_the_app(workspace, imap_server):  # noqa: F811
    from textual.widgets import Input, Select, Static

    from panza_core import secrets
    from panza_tui.tui.app import PanzaApp
    from panza_tui.tui.screens.account_form import AccountForm

    app = PanzaApp(workspace=workspace)

    async def fill_and_save(pilot, **values):
        form = app.screen
        assert isinstance(form, AccountForm)
        for key, value in values.items():
            form.query_one(f"#{key}", Input).value = value
        form.query_one("#security", Select).value = "plain"
        form.query_one("#save").press()
        await pilot.pause()  # the press is handled, the login worker starts
        await settled(app, pilot)
        return form

    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("a", "n")
        await pilot.pause()
        settings = dict(
            name="box", host="127.0.0.1", port=str(imap_server.port), user=imap_server.user
        )
        form = await fill_and_save(pilot, **settings, password="wrong")
        assert "refused the login" in str(form.query_one("#error", Static).render())
        assert workspace.store.accounts() == []  # nothing stored on a failed login
        await fill_and_save(pilot, **settings, password=imap_server.password)
        assert workspace.store.accounts() == ["box"]
        assert secrets.get_secret("box:imap") == imap_server.secret
        assert workspace.store.server("box")["port"] == imap_server.port
        await pilot.press("e")
        await pilot.pause()
        assert app.screen.query_one("#host", Input).value == "127.0.0.1"
        await fill_and_save(pilot, password="")  # an empty password keeps the stored one
        assert not isinstance(app.screen, AccountForm)
        assert secrets.get_secret("box:imap") == imap_server.secret


@pytest.mark.slow
async def test_a_cli_sync_beside_the_open_app_syncing_the_same_account(demo_ws, imap_server):  # noqa: F811
    """`panza sync` in a terminal while the app syncs the same account over a slow link and
    the user saves a draft: both syncs finish cleanly, every email is stored once, the
    draft is kept, and the retrieval index matches the store (issue 13)."""
    import os
    import subprocess
    import sys

    from panza_core import secrets
    from panza_tui.tui.app import PanzaApp
    from sync import imap
    from tests.sync.conftest import append_all
    from tests.sync.proxy import CuttableProxy

    append_all(imap_server, "Sent", demo_messages())
    slow = CuttableProxy(imap_server.port, delay=0.02)
    demo_ws.store.add_account("server", [ADDRESS])
    demo_ws.store.set_server("server", imap.ImapServer(
        host="127.0.0.1", user=imap_server.user, port=slow.port, security="plain",
    ).to_json())  # fmt: skip
    secrets.set_secret("server:imap", imap_server.secret)
    cli = subprocess.Popen([sys.executable, "-m", "panza_tui", "sync", "-a", "server"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ),
                           text=True)  # fmt: skip
    app = PanzaApp(account="demo", workspace=demo_ws)
    try:
        async with app.run_test(size=(130, 30)) as pilot:
            await pilot.press("a")
            await pilot.pause()
            await pilot.press("down", "s")
            draft = demo_ws.store.save_draft("server", "x", "Saved mid-sync.\n", [], subject="s")
            await settled(app, pilot)
            status = str(app.screen.query_one("#status").render())
            assert "new of yours" in status, status
        out, err = cli.communicate(timeout=300)
    finally:
        slow.close()
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, err[-2000:]
    store = demo_ws.store
    rows = store.messages("server")
    assert len(rows) == 65 == len({m.content_hash for m in rows})
    assert store.draft(draft).text == "Saved mid-sync.\n"
    demo_ws._indexes.clear()
    demo_ws.update_index("server")
    index = demo_ws.index("server")
    assert sorted(index.keys()) == sorted(m.id for m in rows)


@pytest.mark.slow
async def test_new_mail_appears_while_the_app_is_open(home, imap_server, monkeypatch):  # noqa: F811
    """The open app checks the server accounts every ``[ui] check_mail_every`` seconds: new
    mail on the server shows up, and the Model screen's "new since model #k" count follows."""
    from textual.widgets import Static

    from panza_core import secrets
    from panza_core.workspace import Workspace
    from panza_tui.tui.app import PanzaApp
    from panza_tui.tui.screens.model import ModelScreen
    from sync import accounts, imap
    from tests.sync.conftest import append_all

    monkeypatch.setenv("PANZA_UI__CHECK_MAIL_EVERY", "1")
    ws = Workspace()
    messages = demo_messages()
    append_all(imap_server, "Sent", messages[:6])
    ws.store.add_account("server", [ADDRESS])
    ws.store.set_server("server", imap.ImapServer(
        host="127.0.0.1", user=imap_server.user, port=imap_server.port, security="plain",
    ).to_json())  # fmt: skip
    secrets.set_secret("server:imap", imap_server.secret)
    accounts.sync(ws, "server", index=False)
    before = ws.store.count_messages("server")
    run = ws.store.start_run("server", "train", "h", {})
    ws.store.finish_run(run, "done", "/nowhere")
    app = PanzaApp(account="server", workspace=ws)
    async with app.run_test(size=(110, 30)) as pilot:
        app.push_screen(ModelScreen("server"))
        await pilot.pause()
        status = app.screen.query_one("#model-status", Static)
        assert f"0 new emails since model #{run}" in str(status.render())
        append_all(imap_server, "Sent", messages[6:9])
        assert await until_async(
            lambda: ws.store.count_messages("server") == before + 3, pilot, timeout=60
        )
        assert await until_async(
            lambda: f"3 new emails since model #{run}" in str(status.render()), pilot, timeout=10
        )
    ws.store.close()


async def test_compose_suggests_to_from_the_instruction_off_the_ui_thread(demo_ws):
    from textual.widgets import Input

    from panza_tui.tui.app import PanzaApp
    from panza_tui.tui.screens.compose import ComposeScreen

    app = PanzaApp(account="demo", workspace=demo_ws)
    async with app.run_test(size=(130, 40)) as pilot:
        await pilot.press("c")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        worker = screen.suggest("Tell Priya the drains are done")
        assert worker.group == "suggest"  # a worker thread, not the UI thread
        await worker.wait()
        await pilot.pause()
        assert screen.query_one("#to", Input).value == "Priya Raman <priya.raman@greenline.example>"
        screen.query_one("#to", Input).value = "someone@else.example"
        await screen.suggest("Tell Tom thanks").wait()
        await pilot.pause()
        assert screen.query_one("#to", Input).value == "someone@else.example"  # typed wins
