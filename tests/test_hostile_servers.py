"""A server (or whoever sits on the network path) that refuses STARTTLS or answers BAD to
LIST, with hostile text in its answer, never shows the password and never crashes the app
(issue 30): the core call, the app's periodic mail check, the account form and the CLI each
give one line, and the password appears in nothing they print or log. The crash screen, the
last guard, shows no local variables."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import traceback

import pytest

from panza_core.secrets import Secret
from tests.helpers import settled, until_async
from tests.hostile import TERMINAL_ACTS_ON, screen_problems
from tests.sync.hostile_imap import HostileImap

PASSWORD = "Tr0ub4dor&3-horse"  # distinctive, so any leak of it is found by a substring test


@pytest.fixture()
def starttls_refusal():
    server = HostileImap("starttls")
    yield server
    server.close()


@pytest.fixture()
def bad_list():
    server = HostileImap("list")
    yield server
    server.close()


def _server(stand_in: HostileImap, security: str):
    from sync.imap import ImapServer

    return ImapServer(
        host="127.0.0.1", user="maya@okafor.example", port=stand_in.port, security=security,
        timeout=10,
    )  # fmt: skip


def _no_password(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text


def test_a_refused_starttls_is_one_line_and_the_password_is_never_sent(starttls_refusal):
    from panza_core.errors import SyncError
    from sync import imap

    with pytest.raises(SyncError) as raised:
        imap.connect(_server(starttls_refusal, "starttls"), Secret(PASSWORD))
    message = str(raised.value)
    assert "refused to start TLS" in message and "\n" not in message
    assert not any(c.upper().startswith("LOGIN") for c in starttls_refusal.commands)
    # a traceback printer shows the chain and, with locals, each frame's variables: neither
    # holds the password, because the error is raised from None and the secret is a Secret
    printed = "".join(traceback.format_exception(raised.value))
    _no_password(printed, repr(raised.value))


def test_a_bad_list_after_the_login_is_one_line(bad_list):
    from panza_core.errors import SyncError
    from sync.imap import ImapBackend

    with pytest.raises(SyncError) as raised:
        ImapBackend().test_login(_server(bad_list, "plain").to_json(), Secret(PASSWORD))
    message = str(raised.value)
    assert message.startswith("listing the folders with 127.0.0.1 failed") and "\n" not in message
    _no_password(message, "".join(traceback.format_exception(raised.value)))


def _notifications(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_a_refused_starttls_during_the_mail_check_is_one_notification_and_the_app_goes_on(
    workspace, starttls_refusal, caplog
):
    from panza_core import secrets
    from panza_tui.tui.app import PanzaApp
    from panza_tui.tui.screens.mail import MailScreen

    caplog.set_level(logging.DEBUG)  # imapclient and imaplib log every command at DEBUG
    workspace.store.add_account("demo", ["maya@okafor.example"])
    workspace.store.set_server("demo", _server(starttls_refusal, "starttls").to_json())
    secrets.set_secret("demo:imap", Secret(PASSWORD))
    app = PanzaApp(account="demo", workspace=workspace)
    async with app.run_test(size=(130, 40), notifications=True) as pilot:
        await pilot.pause()
        for _ in range(2):  # the same failure twice is said once
            app.check_mail()
            await settled(app, pilot)
        (message,) = _notifications(app)
        assert message.startswith("demo: checking for new mail failed: 127.0.0.1:")
        assert "refused to start TLS" in message
        assert not TERMINAL_ACTS_ON.search(message)
        assert await until_async(lambda: len(app.screen.query("Toast")) == 1, pilot)
        assert screen_problems(app) == []
        assert isinstance(app.screen, MailScreen) and app.is_running
        screen = "\n".join(s.text for strip in app.screen._compositor.render_strips()
                           for s in strip)  # fmt: skip
        _no_password(message, screen, caplog.text)
        await pilot.press("j")  # still answers keys
        await pilot.pause()
    assert app._exception is None


async def test_a_bad_list_in_the_account_form_is_one_line_in_the_form(workspace, bad_list):
    from textual.widgets import Input, Select, Static

    from panza_tui.tui.app import PanzaApp
    from panza_tui.tui.screens.account_form import AccountForm

    app = PanzaApp(workspace=workspace)
    async with app.run_test(size=(120, 50), notifications=True) as pilot:
        await pilot.press("a", "n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, AccountForm)
        for key, value in dict(name="box", host="127.0.0.1", port=str(bad_list.port),
                               user="maya@okafor.example", password=PASSWORD).items():  # fmt: skip
            form.query_one(f"#{key}", Input).value = value
        form.query_one("#security", Select).value = "plain"
        form.query_one("#save").press()
        await pilot.pause()
        await settled(app, pilot)
        assert app.screen is form  # still open, to fix and try again
        error = str(form.query_one("#error", Static).render())
        assert "listing the folders with 127.0.0.1 failed" in error and "\n" not in error
        assert "[/]" in error
        assert workspace.store.accounts() == []  # nothing stored after a failed test
        assert screen_problems(app) == []
        _no_password(error, *_notifications(app))
    assert app._exception is None


def _errors(printed: str) -> list[str]:
    """The lines of ``printed`` that say an error, without our own colours and spinner."""
    ours = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", printed)
    return [line for line in ours.splitlines() if line.startswith("error:")]


def _panza(*args: str, home, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "300"}
    return subprocess.run(
        [sys.executable, "-m", "panza_tui", *args], input=stdin, capture_output=True,
        text=True, env=env, timeout=120,
    )  # fmt: skip


@pytest.mark.slow
def test_the_cli_says_one_line_and_never_the_password(home, starttls_refusal, bad_list):
    from panza_core import secrets
    from panza_core.workspace import Workspace

    add = _panza(
        "account", "add", "box", "--imap", "127.0.0.1", "--port", str(bad_list.port),
        "--security", "plain", "--user", "maya@okafor.example", "--password-stdin",
        home=home, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert add.returncode != 0
    (line,) = _errors(add.stderr)
    assert line.startswith("error: listing the folders with 127.0.0.1 failed") and "[/]" in line
    ws = Workspace()
    assert ws.store.accounts() == []
    ws.store.add_account("tls", ["maya@okafor.example"])
    ws.store.set_server("tls", _server(starttls_refusal, "starttls").to_json())
    ws.store.close()
    secrets.set_secret("tls:imap", Secret(PASSWORD))
    synced = _panza("sync", "--account", "tls", home=home)
    assert synced.returncode != 0
    (line,) = _errors(synced.stderr)
    assert "refused to start TLS" in line
    for run in (add, synced):
        printed = run.stdout + run.stderr
        _no_password(printed)
        # the server's ESC sequences and C1 control never reach the terminal (checked
        # before our own colours are stripped, which would hide a leaked CSI)
        assert "\x1b]52" not in printed and "\x1b[2J" not in printed
        assert "\u009b" not in printed
        assert "Traceback" not in run.stderr


def test_a_secret_prints_redacted_even_in_a_traceback_with_locals():
    from rich.console import Console
    from rich.traceback import Traceback

    secret = Secret(PASSWORD)
    assert PASSWORD not in repr(secret) + str(secret) + f"{secret}" + json.dumps(str(secret))
    assert secret.reveal() == PASSWORD and secret == Secret(PASSWORD)

    def login(secret: Secret) -> None:
        raise ConnectionError("dropped")

    try:
        login(secret)
    except ConnectionError:
        console = Console(record=True, width=200)
        console.print(Traceback(show_locals=True))
    printed = console.export_text()
    assert "secret" in printed and "dropped" in printed  # the locals were printed
    _no_password(printed)


async def test_the_crash_screen_shows_no_local_variables(workspace, capsys):
    """Textual prints a crash with each frame's locals; a frame inside a login holds the
    revealed password as a plain str, which no Secret can protect. Ours prints none."""
    from panza_tui.tui.app import PanzaApp

    class Crashing(PanzaApp):
        BINDINGS = [("f9", "crash", "Crash")]

        def action_crash(self) -> None:
            password = Secret(PASSWORD).reveal()  # as imapclient's login holds it
            raise RuntimeError(f"crashed after a login of {len(password)} characters")

    app = Crashing(workspace=workspace)
    with pytest.raises(RuntimeError, match="crashed after a login"):
        async with app.run_test() as pilot:
            await pilot.pause()
            await pilot.press("f9")  # raised inside the app, as a bug in a handler would be
            await pilot.pause()
    printed = capsys.readouterr().err  # Textual prints the crash to stderr as it exits
    assert "crashed after a login" in printed  # the crash itself is still reported
    _no_password(printed)
