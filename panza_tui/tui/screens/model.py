"""The Model screen of an account: what the model is built from (emails, playback pairs,
runs, the export in use, new mail since the last training), and the whole job from the
app: playback -> training -> export -> evaluation with a progress bar per stage, the
training loss as it falls, elapsed and remaining time, cancel and resume.

The job runs in an app worker (``PanzaApp.start_model_job``), not in this screen: leaving
the screen does not stop it, and coming back shows where it is. The app's ``JobProgress``
and ``JobFinished`` redraw it; a clock ticks the elapsed and remaining times between them.
"""

from __future__ import annotations

import time

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.content import Content
from textual.widgets import Footer, Header, Label, ProgressBar, Sparkline, Static

from panza_core.untrusted import clean_line
from panza_tui.tui.messages import JobFinished, JobProgress, MailArrived
from panza_tui.tui.screens.base import PanzaScreen
from training.job import STAGES, ModelJob, Stage, Update

STAGE_NAMES = {
    Stage.PLAYBACK: "Playback",
    Stage.TRAIN: "Training",
    Stage.EXPORT: "Export",
    Stage.EVAL: "Evaluation",
}


def remaining(update: Update, since: float, now: float) -> float | None:
    """Seconds left in the current stage at its rate so far (None while unknown)."""
    if update.total <= 0 or update.done <= 0 or update.done >= update.total:
        return None
    return (now - since) / update.done * (update.total - update.done)


def clock(seconds: float | None) -> str:
    """``m:ss`` (or ``h:mm:ss``); "-" for None."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


class ModelScreen(PanzaScreen[None]):
    """``account``'s model: its status and the job that rebuilds it."""

    stages: tuple[str, ...] = STAGES  # what ``g`` and ``r`` run

    BINDINGS = [
        Binding("g", "start", "Train"),
        Binding("c", "cancel", "Cancel"),
        Binding("r", "resume", "Resume"),
        Binding("escape", "app.pop_screen", "Back"),
    ]
    DEFAULT_CSS = """
    ModelScreen #model-status { padding: 1 2; }
    ModelScreen #stages { grid-size: 3; grid-columns: 12 1fr 32; grid-rows: 1; height: auto;
                          padding: 0 2; grid-gutter: 1 1; }
    ModelScreen .stage-info { color: $text-muted; }
    ModelScreen #loss { height: 6; margin: 1 2; border: round $primary; }
    ModelScreen #job-line { padding: 0 2; color: $text-muted; }
    """

    def __init__(self, account: str) -> None:
        super().__init__()
        self.account = account
        self._finished_stages = 0  # "done" reports seen: the status line is read again

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="model-status")
        with Grid(id="stages"):
            for stage in STAGES:
                yield Label(STAGE_NAMES[stage])
                yield ProgressBar(total=1, id=f"bar-{stage}", show_eta=False)
                yield Label("", id=f"info-{stage}", classes="stage-info")
        sparkline = Sparkline([], id="loss")
        sparkline.border_title = "training loss"
        yield sparkline
        yield Static("", id="job-line")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"{self.account} · model"
        self.refresh_status()
        self.refresh_job()
        self.set_interval(1.0, self.refresh_job)  # the clocks

    @on(JobProgress)
    def _progress(self, event: JobProgress) -> None:
        if event.job.account == self.account:
            self.refresh_job()

    @on(JobFinished)
    def _job_finished(self, event: JobFinished) -> None:
        if event.job.account == self.account:
            self.refresh_status()
            self.refresh_job()

    @on(MailArrived)
    def _mail_arrived(self, event: MailArrived) -> None:
        if self.account in event.arrived:
            self.refresh_status()  # "N new emails since model #k"

    @property
    def job(self) -> ModelJob | None:
        return self.panza.jobs.get(self.account)

    def refresh_status(self) -> None:
        """The account's model status (reads the store; loads no model)."""
        from training import job as jobs

        state = jobs.status(self.panza.workspace, self.account)
        trained = f"model #{state.trained.id}" if state.trained else "none yet"
        active = f"export #{state.active.id}" if state.active else "the base model"
        parts: list[str | tuple[str, str]] = [
            (clean_line(self.account), "bold"),
            f": {state.emails} emails of yours, {state.pairs} with a playback instruction\n"
            f"trained: {trained}; drafting with {active}\n",
            (clean_line(state.summary()), "bold"),
        ]
        if state.resumable is not None:
            parts.append(f"\ntraining run #{state.resumable.id} was interrupted: r resumes it")
        self.query_one("#model-status", Static).update(Content.assemble(*parts))

    def refresh_job(self) -> None:
        """Bars, loss chart and times from the running (or last) job."""
        job = self.job
        line = self.query_one("#job-line", Static)
        if job is None:
            line.update("g runs playback, training, export and evaluation")
            return
        now = time.time()
        started: dict[str, float] = {}
        latest: dict[str, Update] = {}
        for update in list(job.updates):
            started.setdefault(update.stage, update.at)
            latest[update.stage] = update
        for stage in STAGES:
            bar = self.query_one(f"#bar-{stage}", ProgressBar)
            info = self.query_one(f"#info-{stage}", Label)
            last = latest.get(stage)
            if stage not in job.stages:
                info.update("skipped")
                bar.update(total=1, progress=0)
                continue
            if last is None:
                bar.update(total=1, progress=0)
                info.update("waiting")
                continue
            if last.info == "done":
                bar.update(total=1, progress=1)
                info.update("done")
                continue
            loss = f" loss {last.loss:.3f}" if last.loss is not None else ""
            if not job.running:
                bar.update(total=last.total or 1, progress=last.done)
                stopped = job.outcome.state.value
                info.update(f"{last.done}/{last.total or '?'}{loss} · {stopped}")
                continue
            bar.update(total=last.total or None, progress=last.done)
            left = remaining(last, started[stage], now)
            info.update(f"{last.done}/{last.total or '?'}{loss} · {clock(left)} left")
        self.query_one("#loss", Sparkline).data = list(job.losses)
        finished = sum(1 for u in latest.values() if u.info == "done")
        if finished != self._finished_stages:  # new pairs, a new run or export: say so
            self._finished_stages = finished
            self.refresh_status()
        line.update(Content(clean_line(f"{job.outcome} · elapsed {clock(now - job.started)}")))

    def action_start(self) -> None:
        self._start(resume=False)

    def action_resume(self) -> None:
        self._start(resume=True)

    def _start(self, resume: bool) -> None:
        if self.panza.job_running(self.account):
            self.notify("The model job is already running.", severity="warning")
            return
        self._finished_stages = 0
        for stage in STAGES:
            self.query_one(f"#bar-{stage}", ProgressBar).update(total=1, progress=0)
            self.query_one(f"#info-{stage}", Label).update("")
        self.panza.start_model_job(self.account, resume, self.stages)

    def action_cancel(self) -> None:
        job = self.job
        if job is None or not self.panza.job_running(self.account):
            self.notify("Nothing is running.")
            return
        job.cancel()
        self.notify("Cancelling at the next step; finished work is kept.")

    def on_screen_resume(self) -> None:
        self.refresh_status()
