"""Every error a user can cause or meet is one line and exit status 2 at the command line;
``--debug`` shows the traceback (issue 13)."""

from __future__ import annotations

import importlib
import json
import os
import sqlite3
import subprocess
import sys
from concurrent.futures.process import BrokenProcessPool

import pytest

from panza_core.errors import SyncError

cli_main = importlib.import_module("panza_tui.cli.main")  # the module, not its main()


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (SyncError("Gmail is busy [503]"), "Gmail is busy [503]"),  # brackets are not markup
        (sqlite3.IntegrityError("UNIQUE constraint failed: messages.id"), "another panza"),
        (sqlite3.OperationalError("database is locked"), "database is locked"),
        (BrokenProcessPool("gone"), "worker process died"),
        (OSError(28, "No space left on device", "/x/store.sqlite3"), "No space left"),
        (RuntimeError("boom"), "bug in Panza"),
    ],
)
def test_each_error_is_one_line_with_exit_status_2(error, words, monkeypatch, capsys):
    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(cli_main, "app", failing)
    monkeypatch.setattr(sys, "argv", ["panza", "sync"])
    with pytest.raises(SystemExit) as stop:
        cli_main.main()
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert words in err.replace("\n", " ") and "Traceback" not in err
    assert err.startswith("error:")
    monkeypatch.setattr(sys, "argv", ["panza", "sync", "--debug"])
    with pytest.raises(type(error)):  # --debug lets the traceback through
        cli_main.main()


def test_a_gmail_outage_during_sync_is_one_line_not_a_traceback(home, tmp_path):
    from panza_core import secrets
    from panza_core.store import Store
    from sync import gmail
    from tests.helpers import demo_messages
    from tests.sync.fake_gmail import FakeGmail

    fake = FakeGmail()
    try:
        fake.add(demo_messages()[0])
        with Store() as store:
            store.add_account("g", ["maya@okafor.example"])
            store.set_server("g", gmail.settings("maya@okafor.example", fake.url))
        token = {"token": "valid-token", "refresh_token": "refresh-1", "client_id": "cid",
                 "client_secret": "csecret", "token_uri": f"{fake.url}/token"}  # fmt: skip
        secrets.set_secret("g:gmail", json.dumps(token))
        fake.faults += [("profile", 400)] * 2
        env = dict(os.environ)
        run = [sys.executable, "-m", "panza_tui", "sync", "--account", "g"]
        plain = subprocess.run(run, capture_output=True, text=True, env=env, timeout=120)
        debug = subprocess.run([*run, "--debug"], capture_output=True, text=True, env=env,
                               timeout=120)  # fmt: skip
    finally:
        fake.close()
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert "Gmail refused the request (400" in plain.stderr
    assert debug.returncode != 0 and "Traceback" in debug.stderr
