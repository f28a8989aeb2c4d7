"""An account's model versions: every export run is a version; one is active for drafting.

One adapter per account (OPPU, arXiv 2402.04401). Versions are never overwritten: a new
training run and export add a version, ``activate`` picks any finished one and ``rollback``
steps back to the version exported before the active one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from panza_core.errors import PipelineError
from panza_core.store import Store


@dataclass
class Version:
    """One export of an account: ``run`` id, the ``train_run`` it came from, its method
    (lora, rosa, full), quantization type, whether adapter-only, file and whether active."""

    run: int
    train_run: int | None
    method: str
    quant: str
    adapter_only: bool
    path: str
    active: bool
    finished_at: float | None


def versions(store: Store, account: str) -> list[Version]:
    """The account's finished exports whose file is still on disk, newest first."""
    active = store.account(account).active_export
    found = []
    for run in store.runs(account, "export"):
        if run.status != "done" or not Path(run.path).exists():
            continue
        method = "?"
        if run.parent:
            trained = store.run(run.parent)
            method = trained.metrics.get("method") or trained.config.get("method", "lora")
        found.append(Version(
            run.id, run.parent, method, run.config.get("quant", "?"),
            bool(run.config.get("adapter_only")), run.path, run.id == active, run.finished_at,
        ))  # fmt: skip
    if found and not any(v.active for v in found) and active is None:
        found[0].active = True  # drafting falls back to the newest export
    return found


def activate(store: Store, account: str, run_id: int) -> Version:
    """Make export ``run_id`` the account's model; raises ``PipelineError`` if it is not a
    finished export of this account with its file on disk."""
    for version in versions(store, account):
        if version.run == run_id:
            store.set_active_export(account, run_id)
            version.active = True
            return version
    raise PipelineError(
        f"run #{run_id} is not a finished export of {account!r}; see 'panza adapters list "
        f"--account {account}'"
    )


def rollback(store: Store, account: str) -> Version:
    """Activate the version exported before the active one; ``PipelineError`` if none."""
    listed = versions(store, account)
    current = next((i for i, v in enumerate(listed) if v.active), None)
    if current is None or current + 1 >= len(listed):
        raise PipelineError(f"account {account!r} has no earlier model version to roll back to")
    return activate(store, account, listed[current + 1].run)
