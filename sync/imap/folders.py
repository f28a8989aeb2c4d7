"""Syncing the sent folder and INBOX: folders found by SPECIAL-USE or name, new UIDs only
while UIDVALIDITY holds, deletions checked unless HIGHESTMODSEQ proves none, each batch
committed with the last UID it reached (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from panza_core.errors import SyncError
from panza_core.secrets import Secret
from panza_core.store import Store
from sync import extract
from sync.backend import SyncReport
from sync.imap.fetch import extractor, prefetched
from sync.imap.server import ImapServer, connect, logout, server_errors

SENT_NAMES = ("Sent", "Sent Items", "Sent Messages", "[Gmail]/Sent Mail", "INBOX.Sent", "Sent Mail")


def find_folder(client: Any, use: bytes, names: tuple[str, ...], override: str = "") -> str:
    """The folder with SPECIAL-USE flag ``use`` (e.g. ``b"\\\\Sent"``), else a common name.

    Raises ``SyncError`` listing the server's folders if none fits.
    """
    folders = client.list_folders()
    if override:
        if any(name == override for _, _, name in folders):
            return override
        raise SyncError(f"no folder {override!r} on the server")
    for flags, _, name in folders:
        if use in flags:
            return name
    lowered = {name.lower(): name for _, _, name in folders}
    for candidate in names:
        if candidate.lower() in lowered:
            return lowered[candidate.lower()]
    listing = ", ".join(name for _, _, name in folders)
    raise SyncError(f"no {use.decode()} folder found (folders: {listing}); name it with --sent")


def sync_folder(
    store: Store, account: str, client: Any, folder: str, min_words: int = 10,
    batch: int = 200, progress: Callable[[int, int], None] | None = None,
    received: bool = False,
) -> SyncReport:  # fmt: skip
    """Bring ``folder`` of ``account`` up to date; see the module docstring for how.

    ``received``: the folder holds received mail (INBOX), kept as such; otherwise mail not
    from the account's addresses is skipped as ``not_from_account``.
    """
    report = SyncReport(folder=folder)
    info = client.select_folder(folder, readonly=True)
    uidvalidity = int(info[b"UIDVALIDITY"])
    modseq = info.get(b"HIGHESTMODSEQ")
    modseq = int(modseq) if modseq is not None else None
    state = store.sync_state(account, folder)
    if state is not None and state.uidvalidity != uidvalidity:
        store.forget_folder(account, folder)
        report.resynced = True
        state = None
    last_uid = state.last_uid if state else 0

    known = store.uids(account, folder)
    unchanged = state is not None and modseq is not None and state.highestmodseq == modseq
    if known and not unchanged:
        present = set(client.search(["ALL"]))
        gone = [row for uid, row in known.items() if uid not in present]
        report.deleted_ids += gone
        store.mark_deleted(gone)

    # "N:*" always matches the last message even when its UID is below N, so filter.
    new = sorted(uid for uid in client.search(["UID", f"{last_uid + 1}:*"]) if uid > last_uid)
    addresses = store.addresses(account) or None
    done = 0
    with extractor(len(new)) as run:
        for chunk, data in prefetched(client, new, batch):
            jobs = [
                (data.get(uid, {}).get(b"BODY[]"), addresses, min_words, f"{folder}/{uid}",
                 folder, received)
                for uid in chunk
            ]  # fmt: skip
            results = run(jobs)
            with store.transaction():
                for uid, (raw, *_), result in zip(chunk, jobs, results, strict=True):
                    source = f"{folder}/{uid}"
                    if raw is None:
                        result = extract.Skip("unparseable", "the server returned no body")
                    elif isinstance(result, extract.Message):
                        result.uid = uid
                    report.record(store, account, source, result)
                store.set_sync_state(account, folder, uidvalidity=uidvalidity, last_uid=chunk[-1])
            done += len(chunk)
            if progress:
                progress(done, len(new))
    store.set_sync_state(
        account, folder, uidvalidity=uidvalidity, last_uid=max([last_uid, *new]),
        highestmodseq=modseq,
    )  # fmt: skip
    return report


def sync(
    store: Store, account: str, secret: Secret, min_words: int = 10, batch: int = 200,
    progress: Callable[[int, int], None] | None = None,
) -> SyncReport:  # fmt: skip
    """Sync the sent folder of ``account`` (whose server settings are in the store), then
    its INBOX; one report with the counts of both (``received`` counts INBOX mail).

    ``progress(done, total)`` runs over both folders in turn. Raises ``AuthError``/
    ``SyncError``; a connection lost mid-sync keeps every finished batch and says to run the
    sync again to continue.
    """
    server = ImapServer.from_json(store.server(account))
    client = connect(server, secret)
    again = "what was fetched is kept: run 'panza sync' again to continue"
    try:
        with server_errors(server, "the sync", again):
            folder = find_folder(client, b"\\Sent", SENT_NAMES, server.sent)
            report = sync_folder(store, account, client, folder, min_words, batch, progress)
            if server.inbox and server.inbox != folder:
                inbox = sync_folder(
                    store, account, client, server.inbox, min_words, batch, progress,
                    received=True,
                )  # fmt: skip
                report.merge(inbox)
            return report
    except BrokenProcessPool:  # a parsing worker was killed (out of memory?)
        raise SyncError(
            f"a worker process parsing mail died (out of memory, or killed); {again}"
        ) from None
    finally:
        logout(client)
