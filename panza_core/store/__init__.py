"""The local SQLite store: accounts, messages (sent and received), playback pairs, runs,
drafts and sync state, one module per table behind one ``Store``.

Every method is a short transaction; a crash mid-import loses at most the message in hand.
Rows come back as dataclasses (``rows``); no SQL lives outside this package.
"""

from __future__ import annotations

from panza_core.store.drafts import Drafts
from panza_core.store.messages import Messages
from panza_core.store.pairs import Pairs
from panza_core.store.rows import (
    Account,
    Draft,
    Listed,
    Message,
    Run,
    SyncState,
    content_hash,
    thread_key,
)
from panza_core.store.runs import Runs
from panza_core.store.sync_state import SyncStates

__all__ = [
    "Account", "Draft", "Listed", "Message", "Run", "Store", "SyncState", "content_hash",
    "thread_key",
]  # fmt: skip


class Store(Messages, SyncStates, Pairs, Runs, Drafts):
    """Access to the SQLite store (``Database``: one connection per thread, migrated on
    open); one object may be shared by threads. ``Store(path)``, or the Panza home's
    ``panza.sqlite3`` when ``path`` is None; raises ``PanzaError`` for a file that is not a
    Panza database or is newer than this code."""

    def __enter__(self) -> Store:
        return self
