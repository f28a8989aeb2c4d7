"""What the app tells its screens: mail arrived, a model job moved or ended.

The app posts these to every screen on its stack; a screen that shows what changed
handles them (``@on(MailArrived)``), one that does not ignores them. The app never needs to
know which screen shows what.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from training.job import ModelJob, Update


@dataclass
class MailArrived(Message):
    """A mail check stored new mail: account -> how many emails (sent and received)."""

    arrived: dict[str, int]


@dataclass
class JobProgress(Message):
    """A model job reported progress (``update``: its stage, units done, loss)."""

    job: ModelJob
    update: Update


@dataclass
class JobFinished(Message):
    """A model job ended; ``job.outcome`` says how."""

    job: ModelJob
