"""The runs table: every train, export and eval run, its inputs, outputs and metrics."""

from __future__ import annotations

import json
import time
from typing import Any

from panza_core.errors import PanzaError
from panza_core.store.database import Database
from panza_core.store.rows import Run


class Runs(Database):
    """Runs, reused when their inputs (``input_hash``) are unchanged."""

    def start_run(
        self, account: str, kind: str, input_hash: str, config: dict[str, Any],
        parent: int | None = None,
    ) -> int:  # fmt: skip
        """Record a ``running`` run of ``kind`` (train, export, eval); returns its id."""
        cur = self._write(
            account,
            "INSERT INTO runs(account, kind, status, input_hash, config, parent, started_at) "
            "VALUES (?,?,?,?,?,?,?)",
            (account, kind, "running", input_hash, json.dumps(config), parent, time.time()),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish_run(
        self, run_id: int, status: str, path: str = "", metrics: dict[str, Any] | None = None
    ) -> None:
        """Mark a run ``done`` or ``failed`` with its output path and metrics."""
        self.db.execute(
            "UPDATE runs SET status=?, path=?, metrics=?, finished_at=? WHERE id=?",
            (status, path, json.dumps(metrics or {}), time.time(), run_id),
        )

    def reopen_run(self, run_id: int) -> None:
        """Mark a killed or failed run ``running`` again (``panza train --resume``)."""
        self.db.execute("UPDATE runs SET status='running', finished_at=NULL WHERE id=?", (run_id,))

    def run(self, run_id: int) -> Run:
        """One run by id; raises ``PanzaError`` if there is none."""
        row = self.db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise PanzaError(f"no run with id {run_id}")
        return Run.from_row(row)

    def find_run(self, account: str, kind: str, input_hash: str) -> Run | None:
        """The newest finished run of ``kind`` with the same inputs, to reuse its result."""
        row = self.db.execute(
            "SELECT * FROM runs WHERE account=? AND kind=? AND input_hash=? AND status='done' "
            "ORDER BY id DESC LIMIT 1",
            (account, kind, input_hash),
        ).fetchone()
        return None if row is None else Run.from_row(row)

    def latest_run(self, account: str, kind: str) -> Run | None:
        """The newest finished run of ``kind`` for ``account``, or None."""
        row = self.db.execute(
            "SELECT * FROM runs WHERE account=? AND kind=? AND status='done' "
            "ORDER BY id DESC LIMIT 1",
            (account, kind),
        ).fetchone()
        return None if row is None else Run.from_row(row)

    def runs(self, account: str, kind: str | None = None) -> list[Run]:
        """All runs of ``account`` (of ``kind`` if given), newest first, any status."""
        sql, args = "SELECT * FROM runs WHERE account=?", [account]
        if kind is not None:
            sql, args = sql + " AND kind=?", [account, kind]
        return [Run.from_row(row) for row in self.db.execute(sql + " ORDER BY id DESC", args)]
