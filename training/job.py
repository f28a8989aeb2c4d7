"""The whole model job of an account, as the app runs it: playback, training, export and
evaluation in turn, with progress, cancel and resume.

Each stage is the same function the command line runs (``training.playback.run``,
``finetune.train``, ``export.export``, ``evaluate.evaluate``), so a job started in the app
and one started with ``panza train`` share their runs, caches and checkpoints. Cancelling
stops at the next progress report (after an email, an optimizer step, or a draft): a
cancelled training run is left failed with its checkpoint, and ``ModelJob(resume=True)``
(or ``panza train --resume``) continues it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any

from panza_core.errors import PanzaError

if TYPE_CHECKING:
    from panza_core.store import Run
    from panza_core.workspace import Workspace


class Stage(StrEnum):
    """A stage of the model job, in the order it runs (its value is the CLI's word)."""

    PLAYBACK = "playback"
    TRAIN = "train"
    EXPORT = "export"
    EVAL = "eval"


STAGES: tuple[Stage, ...] = tuple(Stage)


class JobState(Enum):
    """Where a job is: running, or how it ended."""

    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """A job's state and, for a cancelled or failed one, the line that says what next."""

    state: JobState
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.state.value}: {self.detail}" if self.detail else self.state.value


class Cancelled(PanzaError):
    """The user cancelled the job; finished work is kept and training can be resumed."""


@dataclass(frozen=True)
class Update:
    """One progress report: ``stage`` (one of ``STAGES``), ``done`` of ``total`` units
    (emails, optimizer steps, drafts; total 0 while unknown), the training ``loss`` after
    a step, a short ``info`` line, and when it was made (``at``)."""

    stage: str
    done: int = 0
    total: int = 0
    loss: float | None = None
    info: str = ""
    at: float = field(default_factory=time.time)  # Unix seconds


@dataclass
class ModelStatus:
    """What an account's model is built from and where it stands."""

    emails: int  # the account's own emails
    pairs: int  # of them, with a playback instruction
    trained: Run | None  # the newest finished training run
    active: Run | None  # the export drafting uses
    new_since: int  # own emails stored after ``trained`` started
    resumable: Run | None  # an interrupted training run with a checkpoint

    def summary(self) -> str:
        """One line, e.g. "42 new emails since model #3"."""
        if self.trained is None:
            return f"{self.emails} emails, no model trained yet"
        return f"{self.new_since} new emails since model #{self.trained.id}"


def status(ws: Workspace, account: str) -> ModelStatus:
    """The account's ``ModelStatus``; loads no model. Raises ``AccountError``."""
    from training import finetune, playback

    store = ws.store
    store.account(account)
    trained = store.latest_run(account, "train")
    active_id = store.account(account).active_export
    active = store.run(active_id) if active_id else None
    try:
        pairs = len(playback.pairs(store, account, ws.llm, ws.config.playback))
    except PanzaError:  # no usable base model yet: nothing was played back with it
        pairs = 0
    return ModelStatus(
        emails=store.count_messages(account),
        pairs=pairs,
        trained=trained,
        active=active,
        new_since=store.count_new_since(account, trained.started_at) if trained else 0,
        resumable=finetune.resumable(ws, account),
    )


Report = Callable[["Update"], None]


def _playback(job: ModelJob, report: Report) -> Any:
    from training import playback, selection

    chosen = selection.choose(job.ws, job.account)
    job.results["selection"] = chosen
    return playback.run(
        job.ws.store, job.account, job.ws.llm, job.ws.config.playback,
        progress=lambda done, total: report(Update(Stage.PLAYBACK, done, total)),
        messages=chosen.emails,
    )  # fmt: skip


def _train(job: ModelJob, report: Report) -> Any:
    from training import finetune

    return finetune.train(
        job.ws, job.account, resume=job.resume and _resumable(job.ws, job.account),
        progress=lambda done, total, loss: report(Update(Stage.TRAIN, done, total, loss)),
    )  # fmt: skip


def _export(job: ModelJob, report: Report) -> Any:
    from training import export

    return export.export(job.ws, job.account)


def _eval(job: ModelJob, report: Report) -> Any:
    from training import evaluate

    def drafted(setting: str, done: int, total: int) -> None:
        report(Update(Stage.EVAL, done, total, info=setting))

    return evaluate.evaluate(job.ws, job.account, progress=drafted)


# What each stage runs: the same functions as its command (``panza playback``, ``train``,
# ``export``, ``eval``), so a new stage is a function and a row here.
RUNNERS: dict[Stage, Callable[[ModelJob, Report], Any]] = {
    Stage.PLAYBACK: _playback,
    Stage.TRAIN: _train,
    Stage.EXPORT: _export,
    Stage.EVAL: _eval,
}


@dataclass
class ModelJob:
    """Playback -> training -> export -> evaluation of ``account`` (``stages``, in that
    order). ``run`` blocks (call it from a worker thread); ``cancel`` may be called from any
    thread. ``updates`` keeps every report, ``losses`` the training loss per step;
    ``outcome`` is running until whoever runs it records how it ended (``finish``)."""

    ws: Workspace
    account: str
    stages: Sequence[str] = STAGES
    resume: bool = False
    updates: list[Update] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    outcome: Outcome = Outcome(JobState.RUNNING)
    _cancel: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Ask the job to stop at its next progress report."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        """Whether ``cancel`` was called."""
        return self._cancel.is_set()

    @property
    def running(self) -> bool:
        """Whether the job has not ended yet."""
        return self.outcome.state is JobState.RUNNING

    @property
    def latest(self) -> Update | None:
        """The newest progress report, or None before the first."""
        return self.updates[-1] if self.updates else None

    def finish(self, outcome: Outcome) -> None:
        """Record how the job ended."""
        self.outcome = outcome

    def _report(self, update: Update, listener: Report | None) -> None:
        self.updates.append(update)
        if update.loss is not None:
            self.losses.append(update.loss)
        if listener is not None:
            listener(update)
        if self._cancel.is_set():
            raise Cancelled(f"cancelled during {update.stage}; finished work is kept")

    def run(self, listener: Report | None = None) -> dict[str, Any]:
        """Run the stages; returns each stage's result by name. Raises ``Cancelled`` when
        cancelled, ``PanzaError`` for a stage not in ``Stage``, and whatever a stage raises
        (``PanzaError`` subclasses)."""

        def report(update: Update) -> None:
            self._report(update, listener)

        for name in self.stages:
            try:
                stage = Stage(name)
            except ValueError:
                raise PanzaError(f"unknown stage {name!r}: use {', '.join(STAGES)}") from None
            report(Update(stage, info="starting"))
            self.results[stage] = RUNNERS[stage](self, report)
            report(Update(stage, 1, 1, info="done"))
        return self.results


def _resumable(ws: Workspace, account: str) -> bool:
    from training import finetune

    return finetune.resumable(ws, account) is not None
