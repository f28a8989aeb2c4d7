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
from typing import TYPE_CHECKING, Any

from panza_core.errors import PanzaError

if TYPE_CHECKING:
    from panza_core.store import Run
    from panza_core.workspace import Workspace

STAGES = ("playback", "train", "export", "eval")


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


@dataclass
class ModelJob:
    """Playback -> training -> export -> evaluation of ``account`` (``stages``, in that
    order). ``run`` blocks (call it from a worker thread); ``cancel`` may be called from any
    thread. ``updates`` keeps every report, ``losses`` the training loss per step."""

    ws: Workspace
    account: str
    stages: Sequence[str] = STAGES
    resume: bool = False
    updates: list[Update] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    _cancel: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Ask the job to stop at its next progress report."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def latest(self) -> Update | None:
        return self.updates[-1] if self.updates else None

    def _report(self, update: Update, listener: Callable[[Update], None] | None) -> None:
        self.updates.append(update)
        if update.loss is not None:
            self.losses.append(update.loss)
        if listener is not None:
            listener(update)
        if self._cancel.is_set():
            raise Cancelled(f"cancelled during {update.stage}; finished work is kept")

    def run(self, listener: Callable[[Update], None] | None = None) -> dict[str, Any]:
        """Run the stages; returns each stage's result by name. Raises ``Cancelled`` when
        cancelled, and whatever the stage raises (``PanzaError`` subclasses)."""
        from training import evaluate, export, finetune, selection
        from training import playback as pb

        def report(update: Update) -> None:
            self._report(update, listener)

        for stage in self.stages:
            report(Update(stage, info="starting"))
            if stage == "playback":
                chosen = selection.choose(self.ws, self.account)
                self.results["selection"] = chosen
                self.results[stage] = pb.run(
                    self.ws.store, self.account, self.ws.llm, self.ws.config.playback,
                    progress=lambda done, total: report(Update("playback", done, total)),
                    messages=chosen.emails,
                )  # fmt: skip
            elif stage == "train":
                self.results[stage] = finetune.train(
                    self.ws, self.account, resume=self.resume and _resumable(self.ws, self.account),
                    progress=lambda done, total, loss: report(Update("train", done, total, loss)),
                )  # fmt: skip
            elif stage == "export":
                self.results[stage] = export.export(self.ws, self.account)
            elif stage == "eval":

                def drafted(setting: str, done: int, total: int) -> None:
                    report(Update("eval", done, total, info=setting))

                self.results[stage] = evaluate.evaluate(self.ws, self.account, progress=drafted)
            else:
                raise PanzaError(f"unknown stage {stage!r}: use {', '.join(STAGES)}")
            report(Update(stage, 1, 1, info="done"))
        return self.results


def _resumable(ws: Workspace, account: str) -> bool:
    from training import finetune

    return finetune.resumable(ws, account) is not None
