"""The SQLite file under the store: one connection per thread, transactions, migrations.

One file (``panza.sqlite3`` in the Panza home), WAL journal so the TUI can read while a
worker writes. The schema is versioned with ``PRAGMA user_version`` and migrated forward
(``schema.MIGRATIONS``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from panza_core import locations
from panza_core.errors import AccountError, PanzaError
from panza_core.store.schema import MIGRATIONS


class Database:
    """A thread-safe handle on the store's SQLite file; the tables build on it.

    Each thread gets its own SQLite connection, opened on first use: a transaction held by
    one thread (a sync batch under ``BEGIN IMMEDIATE``) never swallows another thread's
    statements (a draft saved meanwhile), which wait for the write lock instead (busy
    timeout ``BUSY_TIMEOUT_S``). Raises ``PanzaError`` if the file is not a Panza database
    or is newer than this code.
    """

    BUSY_TIMEOUT_S = 60.0

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or locations.database_file()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: dict[int, tuple[threading.Thread, sqlite3.Connection]] = {}
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            locations.private(self.path)  # SQLite makes its -wal and -shm files alike
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise PanzaError(f"{self.path}: not a usable Panza database ({exc})") from exc

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (autocommit, rows as ``sqlite3.Row``, foreign keys on)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        return connection

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False only so that close() can close every thread's connection
        connection = sqlite3.connect(
            self.path, timeout=self.BUSY_TIMEOUT_S, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            # TUI workers are short-lived threads: close what the finished ones left open
            for ident, (thread, old) in list(self._connections.items()):
                if not thread.is_alive():
                    old.close()
                    del self._connections[ident]
            self._connections[threading.get_ident()] = (threading.current_thread(), connection)
        return connection

    def close(self) -> None:
        """Close every thread's SQLite connection; the store reopens them on next use."""
        with self._lock:
            for _, connection in self._connections.values():
                connection.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one transaction (one commit instead of one per statement)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise PanzaError(
                f"{self.path} has schema {version}, newer than this Panza ({len(MIGRATIONS)}): "
                "upgrade panza-tui"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            self.db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version={number};\nCOMMIT;")

    def require_account(self, name: str) -> None:
        """Raise ``AccountError`` naming the known accounts if ``name`` is not one."""
        if not self.db.execute("SELECT 1 FROM accounts WHERE name=?", (name,)).fetchone():
            raise self._no_account(name)

    def _no_account(self, name: str) -> AccountError:
        names = [r[0] for r in self.db.execute("SELECT name FROM accounts ORDER BY name")]
        return AccountError(
            f"no account {name!r} (known: {', '.join(names) or 'none yet'}); create it with "
            f"'panza import ... --account {name}'"
        )

    def _write(self, account: str, sql: str, args: tuple) -> sqlite3.Cursor:
        """Execute a write for ``account``; ``AccountError`` if the account was removed
        meanwhile (by another thread or process: its foreign key fails)."""
        try:
            return self.db.execute(sql, args)
        except sqlite3.IntegrityError:
            self.require_account(account)
            raise
