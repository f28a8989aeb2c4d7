"""What many tests share: mail to feed the importers and servers, and ways to wait for
asynchronous work (the app's workers, a child process) without fixed sleeps."""

from __future__ import annotations

import asyncio
import mailbox
import time
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any, TypeVar

from panza_tui.cli.demo import mailbox as demo_mailbox

T = TypeVar("T")


def demo_messages() -> list[bytes]:
    """The shipped demo mailbox (Maya's 69 sent emails) as raw RFC 5322 messages."""
    return [bytes(m) for m in mailbox.mbox(demo_mailbox())]


def raw_email(
    body: str, subject: str = "Hello", sender: str = "Me <me@example.org>",
    subtype: str = "plain", charset: str = "utf-8", msgid: str = "<1@example.org>",
    extra: str = "", date: str = "Tue, 03 Mar 2026 10:00:00 +0100",
) -> bytes:  # fmt: skip
    """One well-formed email to Tom with a fixed Date (``extra``: more header lines)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "Tom <tom@example.org>"
    message["Subject"] = subject
    message["Message-ID"] = msgid
    message["Date"] = date
    for line in extra.splitlines():
        name, _, value = line.partition(":")
        message[name.strip()] = value.strip()
    message.set_content(body, subtype=subtype, charset=charset)
    return message.as_bytes()


def until(condition: Callable[[], T], timeout: float, every: float = 0.2) -> T | None:
    """Poll ``condition()`` until it returns something truthy (returned) or ``timeout``
    seconds pass (None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    return None


async def settled(app: Any, pilot: Any) -> None:
    """Let every worker of a Textual app finish, then let the messages they posted land."""
    await app.workers.wait_for_complete()
    await pilot.pause()


async def until_async(condition: Callable[[], Any], pilot: Any, timeout: float = 10.0) -> bool:
    """Pause the pilot until ``condition()`` holds; False if it did not within ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if condition():
            return True
        await pilot.pause(0.05)
    return False


def as_sent_folder(counts: Counter) -> Counter:
    """A file import's counts as a sync of the Sent folder reports them: there, mail from
    others is skipped (``not_from_account``) rather than kept as received."""
    counts = Counter(counts)
    if "received" in counts:
        counts["not_from_account"] += counts.pop("received")
    return counts


def killed_after_checkpoint(step: int) -> str:
    """Code for ``python -c CODE ARGS...``: the ``panza`` command with ARGS, in a process that
    SIGKILLs itself as soon as its training run's step-``step`` checkpoint is on disk. A tiny
    model trains faster than a parent could poll for the checkpoint; this kills it at a known
    step, from inside, as hard as ``kill -9`` from outside (nothing runs after it)."""
    return f"""
import os, signal, sys
from training import checkpoint
save = checkpoint.save
def save_then_die(run_folder, step, *rest):
    saved = save(run_folder, step, *rest)
    if step == {step}:
        os.kill(os.getpid(), signal.SIGKILL)
    return saved
checkpoint.save = save_then_die
from panza_tui.cli import main
sys.argv[0] = "panza"
main()
"""
