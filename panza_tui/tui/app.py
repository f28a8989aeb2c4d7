"""The Textual app: wires the screens, themes and the per-account drafter. Nothing heavy
(torch, transformers, llama_cpp) is imported here: models load in workers when first used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from textual.app import App
from textual.message import Message as TextualMessage
from textual.notifications import SeverityLevel

from panza_core import locations
from panza_core.store import Message
from panza_core.workspace import Workspace

if TYPE_CHECKING:
    from panza_core.drafting import Drafter
    from training.job import ModelJob, Outcome, Update

BUG_HINT = "please report it, with what you were doing"


class PanzaApp(App):
    """Panza TUI. ``account``: which account to open (default: the first one)."""

    TITLE = "Panza"

    def __init__(self, account: str | None = None, workspace: Workspace | None = None) -> None:
        super().__init__()
        self.started = time.perf_counter()
        self.workspace = workspace or Workspace()
        accounts = self.workspace.store.accounts()
        if account is not None:
            self.workspace.store.account(account)  # raises AccountError naming known ones
        self.account = account or (accounts[0] if accounts else None)
        self._drafters: dict[str, Drafter] = {}
        self.startup_ms: float | None = None
        self.jobs: dict[str, ModelJob] = {}  # account -> its latest model job
        self._quit_armed = 0.0  # monotonic time of a first quit press during a job
        self._check_errors: dict[str, str] = {}  # account -> the last mail check's error

    def on_mount(self) -> None:
        from themes import load_themes

        for theme in load_themes(locations.home() / "themes"):
            self.register_theme(theme)
        wanted = self.workspace.config.ui.theme
        self.theme = wanted if wanted in self.available_themes else "panza-dark"
        from panza_tui.tui.screens.mail import MailScreen

        self.push_screen(MailScreen(self.workspace.store, self.account))
        every = self.workspace.config.ui.check_mail_every
        if every > 0:
            self.set_interval(every, self.check_mail)

    def check_mail(self) -> None:
        """Sync every server account in a worker (one check at a time), so new mail shows
        up while the app is open; the screen in front is refreshed when some arrived."""
        if any(w.group == "check-mail" and not w.is_finished for w in self.workers):
            return
        self.run_worker(self._check_mail, thread=True, group="check-mail", name="mail check")

    def _check_mail(self) -> None:
        from panza_core.errors import describe
        from sync import accounts

        arrived: dict[str, int] = {}
        for name in self.workspace.store.accounts():
            if not accounts.has_server(self.workspace, name):
                continue
            try:
                report = accounts.sync(self.workspace, name).report
            except Exception as exc:  # noqa: BLE001 - offline, a refused STARTTLS, a bug:
                # said once in one line, tried again at the next check; the app goes on
                self.call_from_thread(self._check_failed, name, describe(exc, BUG_HINT))
                continue
            self._check_errors.pop(name, None)
            new = report.counts["kept"] + report.counts["received"]
            if new:
                arrived[name] = new
        if arrived:
            self.call_from_thread(self._mail_arrived, arrived)

    def _check_failed(self, account: str, error: str) -> None:
        if self._check_errors.get(account) != error:
            self._check_errors[account] = error
            self.notify(f"{account}: checking for new mail failed: {error}", severity="warning")

    def _mail_arrived(self, arrived: dict[str, int]) -> None:
        from panza_tui.tui.messages import MailArrived

        self.notify(", ".join(f"{n} new in {account}" for account, n in arrived.items()))
        self._tell_screens(lambda: MailArrived(arrived))

    def _tell_screens(self, message: Callable[[], TextualMessage]) -> None:
        """Post a new ``message()`` to every screen on the stack (each handles what it
        shows; a message is handled once, so each screen gets its own)."""
        for screen in self.screen_stack:
            screen.post_message(message())

    # Navigation lives here, so that screens never import one another.

    def open_mail(self, account: str) -> None:
        """Replace the current screen with ``account``'s mail (it becomes the app's account)."""
        from panza_tui.tui.screens.mail import MailScreen

        self.account = account
        self.switch_screen(MailScreen(self.workspace.store, account))

    def open_accounts(self) -> None:
        """Push the Accounts screen."""
        from panza_tui.tui.screens.accounts import AccountsScreen

        self.push_screen(AccountsScreen())

    def open_account_form(self, account: str | None, done: Callable[[str | None], None]) -> None:
        """Push the IMAP account form (``account``: edit it; None: a new one); ``done`` gets
        the saved account's name, or None if cancelled."""
        from panza_tui.tui.screens.account_form import AccountForm

        self.push_screen(AccountForm(account), done)

    def open_gmail_form(self, done: Callable[[str | None], None], api_root: str = "") -> None:
        """Push the Gmail consent form; ``done`` gets the added account's name, or None."""
        from panza_tui.tui.screens.oauth_form import ConsentForm, Gmail

        self.push_screen(ConsentForm(Gmail(api_root)), done)

    def open_imap_oauth_form(self, done: Callable[[str | None], None]) -> None:
        """Push the form for an IMAP account signing in with OAuth (XOAUTH2)."""
        from panza_tui.tui.screens.oauth_form import ConsentForm, ImapOAuth

        self.push_screen(ConsentForm(ImapOAuth()), done)

    def open_compose(
        self, account: str, reply_to: Message | None = None, reply_all: bool = False
    ) -> None:
        """Push the compose screen for ``account``: a new email, or a reply to ``reply_to``."""
        from panza_tui.tui.screens.compose import ComposeScreen

        self.push_screen(ComposeScreen(account, reply_to=reply_to, reply_all=reply_all))

    def open_evaluation(self, account: str) -> None:
        """Push ``account``'s evaluation results."""
        from panza_tui.tui.screens.evaluation import EvaluationScreen

        self.push_screen(EvaluationScreen(self.workspace.store, account))

    def open_model(self, account: str) -> None:
        """Push ``account``'s Model screen."""
        from panza_tui.tui.screens.model import ModelScreen

        self.push_screen(ModelScreen(account))

    # The model job runs here, not in a screen, so that leaving the screen does not stop it.

    def start_model_job(
        self, account: str, resume: bool = False, stages: Sequence[str] | None = None
    ) -> ModelJob:
        """Start playback -> training -> export -> evaluation of ``account`` in a worker
        thread (``training.job.ModelJob``); returns the job. The title bar shows it on
        every screen while it runs; screens get ``JobProgress`` and ``JobFinished``."""
        from training.job import STAGES, ModelJob

        job = ModelJob(self.workspace, account, stages or STAGES, resume)
        self.jobs[account] = job
        self.run_worker(lambda: self._run_job(job), thread=True, group=f"model:{account}",
                        name=f"model job of {account}")  # fmt: skip
        return job

    def _run_job(self, job: ModelJob) -> None:
        from panza_core.errors import describe
        from training.job import Cancelled, JobState, Outcome

        try:
            job.run(lambda update: self.call_from_thread(self._show_job, job, update))
        except Cancelled:
            outcome = Outcome(JobState.CANCELLED, "r on the Model screen resumes")
        except Exception as exc:  # noqa: BLE001 - a failed job is one line; the app goes on
            outcome = Outcome(JobState.FAILED, describe(exc, BUG_HINT))
        else:
            outcome = Outcome(JobState.DONE)
            self._drafters.pop(job.account, None)  # the next compose loads the new export
        self.call_from_thread(self._finish_job, job, outcome)

    def _show_job(self, job: ModelJob, update: Update) -> None:
        from panza_tui.tui.messages import JobProgress

        total = f"/{update.total}" if update.total else ""
        self.title = f"Panza · {job.account}: {update.stage} {update.done}{total}"
        self._tell_screens(lambda: JobProgress(job, update))

    def _finish_job(self, job: ModelJob, outcome: Outcome) -> None:
        from panza_tui.tui.messages import JobFinished
        from training.job import JobState

        job.finish(outcome)
        self.title = self.TITLE
        severity: SeverityLevel = "error" if outcome.state is JobState.FAILED else "information"
        self.notify(f"{job.account}: model job {outcome}", severity=severity)
        self._tell_screens(lambda: JobFinished(job))

    def job_running(self, account: str) -> bool:
        """Whether ``account``'s model job is running."""
        job = self.jobs.get(account)
        return job is not None and job.running

    def job_state(self, account: str) -> Outcome | None:
        """How ``account``'s latest model job stands (running, or how it ended); None
        before its first."""
        job = self.jobs.get(account)
        return None if job is None else job.outcome

    async def action_quit(self) -> None:
        """Quit; while a model job runs, only on a second press within five seconds (an
        interrupted training run is resumable, but its last steps are lost)."""
        running = [a for a in self.jobs if self.job_running(a)]
        if running and time.monotonic() - self._quit_armed > 5:
            self._quit_armed = time.monotonic()
            self.notify(f"The model job of {', '.join(running)} is running: quit again to stop "
                        "it (training can be resumed later).", severity="warning")  # fmt: skip
            return
        for account in running:
            self.jobs[account].cancel()
        self.exit()

    def notify(
        self, message: str, *, title: str = "", severity: SeverityLevel = "information",
        timeout: float | None = None, markup: bool = True,
    ) -> None:  # fmt: skip
        """Every notification, from any screen or worker, as plain text: a message often
        holds a server's answer or a file name, so it is never read as markup (``markup`` is
        ignored) and the characters a terminal acts on are removed (``untrusted.clean``)."""
        from panza_core.untrusted import clean

        super().notify(
            clean(message), title=clean(title), severity=severity, timeout=timeout,
            markup=False,
        )  # fmt: skip

    def _fatal_error(self) -> None:
        """An unforeseen error ends the app with its traceback, as Textual does, but without
        the local variables Textual prints by default: a frame inside a login holds the
        password. (Workers turn every error into a notification; this is the last guard.)"""
        import rich
        from rich.segment import Segments
        from rich.traceback import Traceback

        self.bell()
        traceback = Traceback(show_locals=False, width=None, suppress=[rich])
        self._exit_renderables.append(
            Segments(self.console.render(traceback, self.console.options))
        )
        self._close_messages_no_wait()

    def on_ready(self) -> None:
        self.startup_ms = (time.perf_counter() - self.started) * 1000
        self.log.info(f"start-up took {self.startup_ms:.0f} ms")

    def drafter(self, account: str) -> Drafter:
        """The account's ``Drafter``, created once (cheap: its models load on first use,
        in a worker); raises ``AccountError`` if the account is gone."""
        from panza_core.drafting import Drafter

        if account not in self._drafters:
            self._drafters[account] = Drafter(self.workspace, account)
        return self._drafters[account]
