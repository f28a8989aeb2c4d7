"""The compose screen: type an instruction, watch the draft stream in, edit, save. A reply
shows the email it answers above the draft, with its headers filled; its instruction is
optional.

Generation runs in a thread worker (llama.cpp releases the GIL); tokens come back to the
UI with ``call_from_thread`` and the end of a draft as a typed message.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Footer, Header, Input, Static, TextArea
from textual.worker import get_current_worker

from panza_core import replies
from panza_core.drafting import Draft, DraftRequest, Preparer, Retrieved
from panza_core.errors import describe
from panza_core.store import Message as Email
from panza_core.untrusted import clean, clean_line
from panza_tui.tui.screens.base import PanzaScreen
from panza_tui.tui.widgets.retrieved import RetrievedPanel
from sync import accounts


class _Cancelled(Exception):
    """Raised inside the token callback to stop a superseded generation."""


class ComposeScreen(PanzaScreen[None]):
    """Instruction box, editable draft, and the retrieved past emails beside it.

    The draft's ``DraftRequest`` is built once, when the screen is made (the conversation
    and headers of a reply read from the store then); the preparation while typing, each
    draft and the save all use it."""

    BINDINGS = [
        Binding("ctrl+r", "regenerate", "Regenerate"),
        Binding("ctrl+n", "next_candidate", "Next candidate"),
        Binding("ctrl+s", "save", "Save draft"),
        Binding("ctrl+y", "copy", "Copy"),
        Binding("escape", "back", "Back"),
    ]
    DEFAULT_CSS = """
    ComposeScreen #main { width: 2fr; }
    ComposeScreen #instruction { border: round $accent; border-title-color: $accent; }
    ComposeScreen #headers { height: 3; }
    ComposeScreen #headers Input { border: round $panel-lighten-2; }
    ComposeScreen #to, ComposeScreen #subject { width: 2fr; }
    ComposeScreen #cc { width: 1fr; }
    ComposeScreen #draft { height: 1fr; border: round $primary; border-title-color: $primary; }
    ComposeScreen #parent {
        height: auto; max-height: 10; border: round $panel-lighten-2; padding: 0 1;
        color: $text-muted;
    }
    ComposeScreen RetrievedPanel { width: 1fr; }
    ComposeScreen #status { height: 1; color: $text-muted; padding: 0 1; }
    """

    @dataclass
    class Finished(Message):
        """The candidates of a draft are complete, best first (each carries its text,
        retrieved emails, timings and fact check)."""

        drafts: list[Draft]
        generation: int

    @dataclass
    class Failed(Message):
        """Drafting stopped with an error the user should see."""

        error: str

    def __init__(
        self, account: str, instruction: str = "", reply_to: Email | None = None,
        reply_all: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.account = account
        self.initial = instruction
        self.reply_to = reply_to
        self.reply_all = reply_all
        self.suggested_to = ""  # the To filled from the instruction (still editable)
        self.retrieved: list[Retrieved] = []
        self.draft_id: int | None = None
        self.instruction = ""
        self.attempt = 0  # each regeneration samples with a new seed
        self.candidates: list[Draft] = []  # of the latest draft, best first (ctrl+n: next)
        self.shown = 0  # which candidate the text area holds
        self.generation = 0  # tokens of a superseded generation are dropped
        # The drafter of the account when the screen opened: a model job finishing meanwhile
        # gives the next compose screen the new export, not this one.
        self.drafter = self.panza.drafter(account)
        self.request: DraftRequest = self.drafter.request(
            instruction, reply_to=reply_to, reply_all=reply_all
        )
        self.preparer = Preparer(self.drafter, self.request)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="main"):
                with Horizontal(id="headers"):
                    for field, hint in (("to", "To"), ("cc", "Cc"), ("subject", "Subject")):
                        header = Input(placeholder=hint, id=field)
                        header.border_title = hint
                        yield header
                if self.reply_to is not None:
                    parent = self.reply_to
                    quote = VerticalScroll(
                        Static(Content(clean(parent.text)), id="parent-text"), id="parent"
                    )
                    quote.border_title = Content(
                        clean_line(f"Replying to {replies.author(parent)} · {parent.date or ''}")
                    )
                    yield quote
                hint = (
                    "optional, e.g. decline politely; enter drafts the reply"
                    if self.reply_to is not None
                    else "e.g. Ask Jonas for the drainage numbers by Friday"
                )
                box = Input(self.initial, placeholder=hint, id="instruction")
                box.border_title = "Instruction (enter to draft)"
                yield box
                area = TextArea(id="draft", soft_wrap=True)
                area.border_title = "Draft"
                yield area
            yield RetrievedPanel()
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{self.account} · " + ("reply" if self.reply_to else "compose")
        headers = self.request.headers
        if headers is not None:
            self.query_one("#to", Input).value = clean_line(headers.to)
            self.query_one("#cc", Input).value = clean_line(headers.cc)
            self.query_one("#subject", Input).value = clean_line(headers.subject)
        self.query_one("#instruction", Input).focus()
        if self.reply_to is not None or self.initial.strip():  # nothing typed yet
            self.preparer.typed(self.initial)

    def on_unmount(self) -> None:
        self.preparer.close()

    # drafting -----------------------------------------------------------------------------

    @on(Input.Submitted, "#instruction")
    def _submitted(self, event: Input.Submitted) -> None:
        self.start(event.value)

    @on(Input.Changed, "#instruction")
    def _typed(self, event: Input.Changed) -> None:
        """Keep the prompt before the instruction evaluated while the user types
        (``Preparer``), so that enter leaves only the instruction's tokens to evaluate."""
        if event.value.strip() or self.reply_to is not None:
            self.preparer.typed(event.value)

    def action_regenerate(self) -> None:
        self.start(self.query_one("#instruction", Input).value)

    def start(self, instruction: str) -> None:
        """Start drafting ``instruction`` (cancels a draft in progress); a reply may have
        none."""
        if not instruction.strip() and self.reply_to is None:
            self.notify("Type what the email should say first.", severity="warning")
            return
        self.preparer.stop()
        self.attempt = self.attempt + 1 if instruction.strip() == self.instruction else 0
        self.instruction = instruction.strip()
        if self.reply_to is None and not self.query_one("#to", Input).value.strip():
            self.suggest(self.instruction)
        self.draft_id = None
        self.generation += 1
        self.query_one("#draft", TextArea).text = ""
        self.query_one(RetrievedPanel).show([], searching=True)
        self.set_status("loading the model…")
        retrieved = self.preparer.retrieval_for(self.instruction)  # their prompt is cached
        request = self.request.typed(self.instruction).using(retrieved).attempt(self.attempt)
        self.generate(request, self.generation)

    @work(thread=True, exclusive=True, group="suggest")
    def suggest(self, instruction: str) -> None:
        """Worker: fill an empty To with the past correspondent the instruction names (the
        address book reads every stored email: never on the UI thread)."""
        suggested = self.drafter.suggest_to(instruction)
        if suggested:
            self.app.call_from_thread(self._suggested, suggested[0])

    def _suggested(self, address: str) -> None:
        to = self.query_one("#to", Input)
        if not to.value.strip():  # the user may have typed one meanwhile
            to.value = clean_line(address)
            self.suggested_to = to.value

    @work(thread=True, exclusive=True, group="draft")
    def generate(self, request: DraftRequest, generation: int) -> None:
        """Worker: retrieve (unless the request has the past emails retrieved while
        typing), then stream the draft into the text area."""
        worker = get_current_worker()
        drafter = self.drafter
        try:
            # The model's words are untrusted too (an email it answers can steer it).

            def token(piece: str) -> None:
                if worker.is_cancelled:
                    raise _Cancelled
                self.app.call_from_thread(self.append, piece, generation)

            def found(retrieved: list[Retrieved]) -> None:
                self.app.call_from_thread(self.show_retrieved, retrieved, generation)
                more = request.settings.candidates - 1
                also = f" (then {more} more, to compare their facts)" if more > 0 else ""
                self.app.call_from_thread(
                    self.set_status, f"{drafter.choice.label}: writing…{also}"
                )

            result = drafter.candidates(request, on_token=token, on_retrieved=found)
        except _Cancelled:
            return
        except Exception as exc:  # noqa: BLE001 - one line to the user; the instruction stays
            self.post_message(self.Failed(describe(exc, "try again; if it persists, report it")))
            return
        self.post_message(self.Finished(result, generation))

    @work(thread=True, group="subject")
    def suggest_subject(self, text: str, instruction: str, generation: int) -> None:
        """Worker: draft a subject for a new email's finished draft (stays editable)."""
        try:
            subject = self.drafter.subject(text, instruction)
        except Exception:  # noqa: BLE001 - a subject is a convenience; the draft stands
            return
        self.app.call_from_thread(self.fill_subject, subject, generation)

    def fill_subject(self, subject: str, generation: int) -> None:
        """Put a drafted subject in an empty Subject field (never over the user's)."""
        box = self.query_one("#subject", Input)
        if generation == self.generation and not box.value.strip():
            box.value = clean_line(subject)

    def append(self, piece: str, generation: int) -> None:
        """Append a streamed piece at the end of the draft (if still the current one)."""
        if generation == self.generation:
            area = self.query_one("#draft", TextArea)
            area.insert(clean(piece), area.document.end)

    def show_retrieved(self, retrieved: list[Retrieved], generation: int) -> None:
        """Show the past emails in the prompt of the current generation."""
        if generation != self.generation:
            return
        self.retrieved = retrieved
        self.query_one(RetrievedPanel).show(retrieved)

    def set_status(self, text: str | Content) -> None:
        """The status line: ``text`` is shown as it is (a str is never read as markup)."""
        self.query_one("#status", Static).update(
            text if isinstance(text, Content) else Content(clean_line(text))
        )

    @on(Finished)
    def _finished(self, event: Finished) -> None:
        if event.generation != self.generation:
            return
        self.candidates = event.drafts
        streamed = next(d for d in event.drafts if d.candidate == 0)
        area = self.query_one("#draft", TextArea)
        untouched = area.text.strip() == clean(streamed.draft).strip()
        self.shown = 0 if untouched else event.drafts.index(streamed)  # never over edits
        self.show_candidate()
        best = event.drafts[self.shown]
        if self.reply_to is None and not self.query_one("#subject", Input).value.strip():
            self.suggest_subject(best.draft, self.instruction, event.generation)

    def action_next_candidate(self) -> None:
        """Show the next candidate of the latest draft (in fact-check order, cycling)."""
        if len(self.candidates) < 2:
            self.notify("No other candidate for this draft.", severity="warning")
            return
        self.shown = (self.shown + 1) % len(self.candidates)
        self.show_candidate()

    def show_candidate(self) -> None:
        """Put candidate ``shown`` in the text area, its fact check and timings below."""
        draft = self.candidates[self.shown]
        area = self.query_one("#draft", TextArea)
        if area.text.strip() != clean(draft.draft).strip():
            area.text = clean(draft.draft)
        t = draft.timings
        check = f" · {draft.facts.summary()}" if draft.facts is not None else ""
        self.set_status(
            f"candidate {self.shown + 1}/{len(self.candidates)}{check} · {draft.model} · "
            f"{len(draft.retrieved)} past emails · first token {t['ttft_ms']:.0f} ms · "
            f"{t['tokens_per_s']:.1f} tokens/s"
        )

    @on(Failed)
    def _failed(self, event: Failed) -> None:
        self.set_status(Content.assemble(("draft failed", "bold"), ": ", clean_line(event.error)))
        self.notify(event.error, title="Draft failed", severity="error")

    # actions on the draft -------------------------------------------------------------------

    def action_save(self) -> None:
        """Save the draft locally now; then, if the account has a server, upload it there."""
        text = self.query_one("#draft", TextArea).text
        if not text.strip():
            self.notify("Nothing to save yet.", severity="warning")
            return
        store = self.panza.workspace.store
        retrieved = [{"id": r.id, "score": r.score} for r in self.retrieved]
        headers = {f: self.query_one(f"#{f}", Input).value.strip() for f in ("to", "cc", "subject")}
        threading = self.request.headers  # a reply's In-Reply-To and References
        self.draft_id = store.save_draft(
            self.account, self.instruction, text, retrieved, self.draft_id,
            to_addrs=headers["to"], cc_addrs=headers["cc"], subject=headers["subject"],
            in_reply_to=threading.in_reply_to if threading else None,
            refs=threading.references if threading else None,
        )  # fmt: skip
        if accounts.has_server(self.panza.workspace, self.account):
            self.notify(f"Saved as local draft #{self.draft_id}; uploading…")
            self.upload(self.draft_id)
        else:
            self.notify(f"Saved as local draft #{self.draft_id}.")

    @work(thread=True, group="upload")
    def upload(self, draft_id: int) -> None:
        """Worker: put the draft in the server's Drafts folder (the local copy stays)."""
        try:
            accounts.upload_draft(self.panza.workspace, self.account, draft_id)
        except Exception as exc:  # noqa: BLE001 - the local copy stands; said in one line
            self.app.call_from_thread(
                self.notify, f"Kept locally, will retry on the next save or sync: {describe(exc)}",
                title="Draft not on the server", severity="warning",
            )  # fmt: skip
            return
        self.app.call_from_thread(self.notify, f"Draft #{draft_id} saved to the server's Drafts.")

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.query_one("#draft", TextArea).text)
        self.notify("Draft copied to the clipboard.")

    def action_back(self) -> None:
        self.workers.cancel_group(self, "draft")
        self.app.pop_screen()
