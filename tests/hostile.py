"""Text a hostile sender writes, and the checks that it shows as plain text (issue 30).

``MARKUP`` holds Rich and Textual markup in each form they read (action tags, links,
variables, tags opening with a space or a capital, stray closing tags) and bracketed words
a sender really writes; ``CONTROLS`` terminal control sequences (OSC 52, OSC 0, OSC 8,
CSI, the one-character C1 CSI and OSC). ``hostile_messages`` turns each into a received
email (subject and body) from Mallory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.message import EmailMessage
from typing import Any

from panza_core.untrusted import clean

MALLORY = "Mallory <mallory@evil.example>"
MARKUP = [
    "[ @click=app.screenshot('x.svg','/tmp')]Click here[/]",
    "[B @click=app.quit]bold click[/]",
    "[$x @click=app.bell]variable click[/]",
    "[@click=app.quit]plain click[/]",
    "[link=file:///etc/passwd]your passwd[/link]",
    "[link='https://evil.example']a link[/]",
    "[EXTERNAL] Quarterly numbers",
    "Thanks! [Sent from my phone]",
    "the binary is in [/usr/bin for now",
    "a stray [/] closing tag",
    "[/bold] closes what never opened",
    "[bold red on white]loud[/bold red on white] and [i]italic",
]
CONTROLS = [
    "\x1b]52;c;ZXZpbCBjbGlwYm9hcmQ=\x07 clipboard write",
    "\x1b]0;owned window title\x07 title",
    "\x1b]8;;https://evil.example\x1b\\hyperlink\x1b]8;;\x1b\\ text",
    "\x1b[2J\x1b[H\x1b[31mclear screen, red\x1b[0m",
    "\x9b31m one-character CSI",
    "\x9d0;C1 title\x9c one-character OSC",
    "bell\x07 backspace\x08 delete\x7f carriage\rreturn",
]
HOSTILE = MARKUP + CONTROLS
TERMINAL_ACTS_ON = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def hostile_messages() -> list[bytes]:
    """One received email from Mallory per ``HOSTILE`` string, as its subject and body,
    newest first in date order of ``HOSTILE`` (the last one is the newest)."""
    raws = []
    for number, text in enumerate(HOSTILE):
        message = EmailMessage()
        message["From"] = MALLORY
        message["To"] = "Maya <maya@okafor.example>"
        message["Subject"] = text.replace("\r", "")  # controls kept (C1 as RFC 2047 words)
        message["Message-ID"] = f"<hostile-{number}@evil.example>"
        message["Date"] = f"Tue, 03 Mar 2026 10:{number:02d}:00 +0100"
        message.set_content(f"Hello Maya,\n\n{text}\n\nMallory\n", cte="base64")
        raws.append(message.as_bytes())
    return raws


# Textual's own scrollbars are the only segments that carry an action of ours.
SCROLLBAR_META = {("@mouse.down", "grab"), ("@mouse.down", "scroll_up"),
                  ("@mouse.down", "scroll_down")}  # fmt: skip


def style_actions(style: Any) -> list[str]:
    """What a Rich style would make a click or the terminal do: its link and meta actions
    (but a scrollbar's own)."""
    if style is None:
        return []
    found = [f"link {style.link}"] if getattr(style, "link", None) else []
    meta = getattr(style, "meta", None) or {}
    return found + [
        f"meta {key}={value}" for key, value in meta.items()
        if key.startswith("@") and (key, value) not in SCROLLBAR_META
    ]  # fmt: skip


def content_actions(content: Any) -> list[str]:
    """Links and actions in a Textual ``Content``'s or a Rich ``Text``'s spans."""
    from rich.style import Style
    from textual.style import Style as TextualStyle

    found = []
    for span in content.spans:
        style = span.style
        if isinstance(style, str):
            if "@click" in style or "link" in style:
                found.append(style)
            continue
        if isinstance(style, TextualStyle):
            style = style.rich_style
        if isinstance(style, Style):
            found += style_actions(style)
    return found


def screen_problems(app: Any, skip: Iterable[str] = ("Footer", "Header")) -> list[str]:
    """Every segment the app's screen renders that carries a link or an action, or holds a
    character a terminal acts on (ESC, C1, ...), outside the widgets named in ``skip``
    (our own key bar and title). Empty when mail shows as plain text."""
    regions = [w.region for w in app.screen.query("*") if type(w).__name__ in skip]
    problems = []
    for y, strip in enumerate(app.screen._compositor.render_strips()):
        x = 0
        for segment in strip:
            inside = any(r.contains(x, y) for r in regions)
            if not inside:
                if TERMINAL_ACTS_ON.search(segment.text):
                    problems.append(f"row {y}: control in {segment.text!r}")
                problems += [f"row {y}: {a} on {segment.text!r}" for a in
                             style_actions(segment.style)]  # fmt: skip
            x += segment.cell_length
    return problems


def shown(text: str) -> str:
    """What a hostile ``text`` must look like on screen: cleaned, brackets kept."""
    return clean(text)
