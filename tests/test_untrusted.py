"""The one way untrusted text reaches a screen (``core.untrusted``) and the CLI's console,
over arbitrary strings (hypothesis) and the hostile corpus through real commands (issue 30).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panza_core.untrusted import clean, clean_line, json_text, plain
from tests.hostile import HOSTILE, TERMINAL_ACTS_ON, hostile_messages

SGR = re.compile("\x1b\\[[0-9;]*m")  # the colour codes our own styles make


@given(st.text())
def test_clean_removes_exactly_what_a_terminal_acts_on(text):
    cleaned = clean(text)
    assert not TERMINAL_ACTS_ON.search(cleaned)
    kept = [c for c in text.replace("\r\n", "\n") if not TERMINAL_ACTS_ON.fullmatch(c)]
    assert cleaned == "".join(kept)  # nothing else changed, brackets included
    assert "\n" not in clean_line(text) and "\t" not in clean_line(text)


@given(st.text())
def test_plain_never_reads_markup(text):
    shown = plain(text, "bold")
    assert shown.plain == clean(text)
    assert all(span.style == "bold" for span in shown.spans) and shown.style == "bold"


@given(st.dictionaries(st.text(), st.text() | st.integers() | st.none()))
def test_json_text_is_json_of_the_same_data_with_no_terminal_control(data):
    out = json_text(data)
    assert json.loads(out) == data
    assert not re.search("[\x00-\x1f\x7f-\x9f]", out)


@settings(max_examples=200)
@given(st.text())
def test_the_cli_console_prints_any_string_as_it_is(text):
    from panza_tui.cli.output import PlainConsole

    out = io.StringIO()
    console = PlainConsole(file=out, force_terminal=True, color_system="standard", width=500)
    console.print(text, style="dim")
    console.print(plain(text))
    printed = SGR.sub("", out.getvalue())
    assert "\x1b" not in printed and not re.search("[\x80-\x9f]", printed)
    # Rich folds long lines and expands tabs: compare the words.
    assert printed.split() == (clean(text).split() * 2)


@pytest.mark.slow
def test_the_cli_shows_hostile_mail_with_brackets_and_no_control_sequence(home, tmp_path):
    folder = tmp_path / "hostile"
    folder.mkdir()
    for number, raw in enumerate(hostile_messages()):  # file names are untrusted too
        (folder / f"[b]{number:02d}\x1b]0;t\x07[i].eml").write_bytes(raw)
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "400", "PANZA_HOME": str(home)}

    def panza(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "panza_tui", *args], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out
        assert "MarkupError" not in out and "Traceback" not in out
        return out

    panza("import", str(folder), "--account", "me", "--address", "maya@okafor.example")
    listing = SGR.sub("", panza("mail", "-a", "me", "--received", "--limit", "100"))
    assert "\x1b" not in listing and not re.search("[\x80-\x9f\x07]", listing)
    for text in ("[EXTERNAL] Quarterly numbers", "[link=file:///etc/passwd]your passwd[/link]",
                 "[/usr/bin for now", "a stray [/] closing tag", "]52;c;"):  # fmt: skip
        assert text in listing
    lines = panza("mail", "-a", "me", "--received", "--json", "--limit", "100").splitlines()
    assert not any(re.search("[\x00-\x1f\x7f-\x9f]", line) for line in lines)
    subjects = {json.loads(line)["subject"] for line in lines}
    assert {text.replace("\r", "") for text in HOSTILE} <= subjects  # kept, only escaped


@pytest.mark.parametrize("text", HOSTILE)
def test_a_server_or_mail_error_is_one_plain_line_at_the_command_line(text, monkeypatch, capsys):
    import importlib

    from panza_core.errors import SyncError

    cli_main = importlib.import_module("panza_tui.cli.main")

    def failing(*args, **kwargs):
        raise SyncError(f"the server said: {text}")

    monkeypatch.setattr(cli_main, "app", failing)
    monkeypatch.setattr(sys, "argv", ["panza", "sync"])
    with pytest.raises(SystemExit):
        cli_main.main()
    err = capsys.readouterr().err
    assert err.startswith("error: the server said: ")
    assert "".join(clean(text).split()) in "".join(err.split())  # one line, words kept
    assert not TERMINAL_ACTS_ON.search(err.replace("\n", ""))
