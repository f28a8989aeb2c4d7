"""Preparing while the user types: the prompt before the instruction kept evaluated, so
the first token of a draft comes right after enter."""

from __future__ import annotations

import threading
from collections.abc import Callable

from panza_core.drafting.drafter import Drafter
from panza_core.drafting.request import DraftRequest, Retrieved

IDLE_EXIT_S = 1.0  # a Preparer's thread ends after this long without keystrokes


class Preparer:
    """Keeps a drafter's prompt evaluated while an instruction is being typed, so that its
    first token comes right after enter.

    Call ``typed(text)`` after every keystroke (from any thread; it returns at once). A
    background thread works toward the latest text, coalescing keystrokes that come while
    it works. Retrieval is debounced twice: past emails are retrieved for the complete
    words typed so far, and retrieved again only once the prompt with the current ones has
    been evaluated to the end (about 100 prompt tokens/s on one core of a 2-core laptop:
    seconds for three past emails), so the cache always holds, or is finishing, a prompt
    whose past emails are at most a few words behind the typing. In between, only the
    instruction's new words are evaluated.

    On enter call ``stop()``, then ``retrieval_for(instruction)``: the past emails whose
    prompt is cached, when the instruction only added words to what they were retrieved
    for; drafting ``request.using(them)`` then evaluates just the instruction's last tokens.
    ``close()`` ends the thread. The model loads on that thread, so loading it never blocks
    the caller. Errors are swallowed: preparing is only a head start, the draft reports
    them.
    """

    def __init__(self, drafter: Drafter, request: DraftRequest) -> None:
        self._drafter = drafter
        self._request = request  # what is being composed; its instruction is what is typed
        self._cond = threading.Condition()
        self._latest: str | None = None
        self._epoch = 0  # bumped by stop(): preparations of an earlier epoch are unwanted
        self._closed = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self._retrieved: list[Retrieved] | None = None
        self._query: str | None = None  # what they were retrieved for
        self._ready = False  # their prompt is evaluated to the end
        self.prepared = 0  # how many preparations ran (for tests and benchmarks)

    def typed(self, text: str) -> None:
        """The instruction is now ``text``; prepare for it when the thread is free."""
        with self._cond:
            if self._closed:
                return
            self._latest = text
            if self._thread is None:
                # Not a daemon: the interpreter waits for it (a thread killed inside
                # llama.cpp at exit aborts the process); it ends itself when idle.
                self._thread = threading.Thread(target=self._run, name="prepare")
                self._thread.start()
            self._cond.notify()

    def stop(self) -> None:
        """The instruction was submitted: drop pending text, and stop the current
        preparation at its next batch (it leaves the draft's cache alone if it has not yet
        taken the model)."""
        with self._cond:
            self._latest = None
            self._epoch += 1

    def retrieval_for(self, instruction: str) -> list[Retrieved] | None:
        """The prepared past emails, if ``instruction`` extends the text they were retrieved
        for (the user only typed on); None if they were retrieved for other words."""
        with self._cond:
            if self._retrieved is None or self._query is None:
                return None
            if not instruction.strip().startswith(self._query.strip()):
                return None
            return list(self._retrieved)

    def close(self) -> None:
        """End the background thread (after its current batch)."""
        with self._cond:
            self._closed = True
            self._latest = None
            self._epoch += 1
            self._cond.notify()

    def idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until nothing is pending or running; whether so."""
        with self._cond:
            return self._cond.wait_for(lambda: self._latest is None and not self._busy, timeout)

    def _wanted(self, epoch: int) -> Callable[[], bool]:
        # Not once the instruction was submitted, nor once newer text waits: work toward it.
        return lambda: epoch == self._epoch and self._latest is None

    def _run(self) -> None:
        while True:
            with self._cond:
                work = self._cond.wait_for(
                    lambda: self._closed or self._latest is not None, IDLE_EXIT_S
                )
                if self._closed or not work:  # typed() starts another when needed
                    self._thread = None
                    return
                text, epoch = self._latest or "", self._epoch
                self._latest = None
                self._busy = True
                query = complete_words(text)
                again = self._retrieved is None or (self._ready and query != self._query)
            try:
                request = self._request.typed(text).using(None if again else self._retrieved)
                retrieved, ready = self._drafter.prepare(
                    request, still_wanted=self._wanted(epoch), query=query
                )
                with self._cond:
                    if retrieved is not None:  # the cache now holds (part of) their prompt
                        self._retrieved, self._ready = retrieved, ready
                        if again:
                            self._query = query
                self.prepared += 1
            except Exception:  # noqa: BLE001 - see the class docstring
                pass
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


def complete_words(text: str) -> str:
    """``text`` up to its last whitespace (the word being typed left out), or all of it
    while the first word is typed."""
    cut = max(text.rfind(" "), text.rfind("\n"))
    return text[:cut].rstrip() if cut > 0 else text
