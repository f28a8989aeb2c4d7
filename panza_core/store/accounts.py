"""The accounts table: names, own addresses, preamble, server settings, active export."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from panza_core import locations
from panza_core.store.database import Database
from panza_core.store.rows import Account


class Accounts(Database):
    """Accounts and their settings; every account-scoped write checks the account here."""

    def add_account(
        self, name: str, addresses: Iterable[str] = (), user_preamble: str = ""
    ) -> None:
        """Create ``name``, or add ``addresses`` to it if it exists."""
        locations.check_account_name(name)
        new = sorted({a.strip().lower() for a in addresses if a.strip()})
        row = self.db.execute("SELECT addresses FROM accounts WHERE name=?", (name,)).fetchone()
        if row is None:
            self.db.execute(
                "INSERT INTO accounts(name, addresses, user_preamble, created_at) VALUES (?,?,?,?)",
                (name, json.dumps(new), user_preamble, time.time()),
            )
            return
        merged = sorted(set(json.loads(row["addresses"])) | set(new))
        self.db.execute("UPDATE accounts SET addresses=? WHERE name=?", (json.dumps(merged), name))
        if user_preamble:
            self.db.execute(
                "UPDATE accounts SET user_preamble=? WHERE name=?", (user_preamble, name)
            )

    def account(self, name: str) -> Account:
        """The account; raises ``AccountError`` naming the known accounts if missing."""
        row = self.db.execute("SELECT * FROM accounts WHERE name=?", (name,)).fetchone()
        if row is None:
            raise self._no_account(name)
        return Account.from_row(row)

    def accounts(self) -> list[str]:
        """Account names, sorted."""
        return [r[0] for r in self.db.execute("SELECT name FROM accounts ORDER BY name")]

    def addresses(self, account: str) -> list[str]:
        """The account's own addresses (lower-case); raises ``AccountError``."""
        return self.account(account).addresses

    def remove_account(self, name: str) -> None:
        """Delete ``name`` with its messages, sync state, runs and drafts (foreign keys
        cascade); raises ``AccountError`` if there is no such account."""
        self.require_account(name)
        self.db.execute("DELETE FROM accounts WHERE name=?", (name,))

    def set_active_export(self, account: str, run_id: int | None) -> None:
        """Make export run ``run_id`` the model that drafts for ``account`` (None: the
        newest export, else the base model); raises ``AccountError``."""
        self.require_account(account)
        self.db.execute("UPDATE accounts SET active_export=? WHERE name=?", (run_id, account))

    def server(self, account: str) -> dict[str, Any]:
        """The account's server settings (JSON; no secrets), ``{}`` for file-only accounts."""
        return self.account(account).server

    def set_server(self, account: str, settings: dict[str, Any]) -> None:
        """Store server settings for ``account``; secrets belong in ``panza_core.secrets``."""
        self.require_account(account)
        self.db.execute(
            "UPDATE accounts SET server=? WHERE name=?", (json.dumps(settings), account)
        )
