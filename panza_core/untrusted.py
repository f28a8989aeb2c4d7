"""The one way text from outside reaches a screen: mail, a server's answer, a file name, the
config, the model's output (a draft can be steered by the email it answers).

Such text is never markup. Rich and Textual markup would turn ``[@click=...]`` into an
action a click runs, ``[link=file:///...]`` into a live hyperlink, and a stray ``[/]`` into
a crash; ``rich.markup.escape`` leaves tags that Textual 8 reads (``[B @click=...]``,
``[$x ...]``, ``[ @click=...]``). So untrusted text goes to widgets and the console as
plain text (``plain``: a ``rich.text.Text`` with no markup parsed), with the characters a
terminal acts on removed first (``clean``): C0 controls but tab and newline, ESC (which
starts CSI and OSC sequences: OSC 52 writes the clipboard, OSC 8 makes hyperlinks, OSC 0
sets the window title), DEL and the C1 controls U+0080-U+009F (U+009B is a one-character
CSI, U+009D an OSC in terminals that read 8-bit controls). ``json_text`` does the same for
``--json``: JSON escapes C0 controls itself but leaves DEL and C1 raw.

Markup stays for Panza's own fixed strings only.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.text import Text

# C0 except tab (0x09) and newline (0x0a), then DEL and C1. ESC is 0x1b, CR 0x0d.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile(r"[\t\n]+")
_NOT_PRINTABLE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029]")


def clean(text: object) -> str:
    """``text`` (anything; ``str()`` of it, ``""`` for None) without the characters a
    terminal acts on: C0 controls but tab and newline, ESC, DEL and C1. CRLF becomes LF.
    Linear in the length; the rest of the text is unchanged, brackets included."""
    if text is None:
        return ""
    return _UNSAFE.sub("", str(text).replace("\r\n", "\n"))


def clean_line(text: object) -> str:
    """``clean(text)`` on one line: runs of newlines and tabs become one space (a subject,
    a sender, a notification)."""
    return _LINE_BREAKS.sub(" ", clean(text)).strip()


def plain(text: object, style: str = "", *, line: bool = False) -> Text:
    """``text`` as a ``rich.text.Text`` to show as it is: cleaned (``clean``, or
    ``clean_line`` when ``line``), no markup parsed, with one ``style`` over all of it
    (a Rich style such as ``"bold"``; never derived from the text)."""
    return Text(clean_line(text) if line else clean(text), style=style, end="")


def json_text(data: Any, **dumps: Any) -> str:
    """``json.dumps(data, ensure_ascii=False, **dumps)`` with DEL, C1 controls and the
    Unicode line separators escaped as ``\\uXXXX`` too (JSON escapes C0 itself): the
    output is valid JSON that decodes to the same data and holds no byte a terminal acts on.
    """
    out = json.dumps(data, ensure_ascii=False, **dumps)
    # Outside strings JSON has only ASCII punctuation, so every match is inside a string.
    return _NOT_PRINTABLE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", out)
