"""Two syncs, draft saves and an account removal at once on one shared ``Store`` (the TUI's
situation: workers sync while the user saves a draft): everything committed, nothing lost,
each failure one clear error (issue 13)."""

from __future__ import annotations

import threading

import pytest

from panza_core.errors import AccountError
from panza_core.store import Store
from panza_tui.cli.demo import ADDRESS
from sync import imap
from tests.helpers import demo_messages
from tests.sync.conftest import append_all


def _account(store: Store, name: str, server) -> None:
    store.add_account(name, [ADDRESS])
    settings = imap.ImapServer(host="127.0.0.1", user=server.user, port=server.port,
                               security="plain")  # fmt: skip
    store.set_server(name, settings.to_json())


def _in_thread(work, errors: dict, key: str) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors[key] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.slow
def test_two_syncs_and_draft_saves_at_once_all_commit(tmp_path, imap_server):
    messages = demo_messages()
    append_all(imap_server, "Sent", messages)
    with Store(tmp_path / "p.sqlite3") as store:
        for name in ("a", "b"):
            _account(store, name, imap_server)
        errors: dict[str, BaseException] = {}
        syncs = [_in_thread(lambda n=n: imap.sync(store, n, imap_server.secret, batch=4),
                            errors, n) for n in ("a", "b")]  # fmt: skip
        saved = []
        while any(t.is_alive() for t in syncs) or len(saved) < 10:
            saved.append(store.save_draft("a", "x", f"Draft {len(saved)}\n", [], subject="s"))
        for thread in syncs:
            thread.join(120)
        assert not errors, errors
        expected = store.count_messages("a")
        assert expected > 40 and store.count_messages("b") == expected
        assert [d.text for d in store.drafts("a")][::-1] == [
            f"Draft {i}\n" for i in range(len(saved))
        ]

    with Store(tmp_path / "single.sqlite3") as alone:  # the same sync, on its own
        _account(alone, "a", imap_server)
        imap.sync(alone, "a", imap_server.secret)
        assert alone.count_messages("a") == expected


def test_removing_an_account_during_its_sync_is_one_clear_error(tmp_path, imap_server):
    append_all(imap_server, "Sent", demo_messages())
    with Store(tmp_path / "p.sqlite3") as store:
        _account(store, "b", imap_server)
        started = threading.Event()
        errors: dict[str, BaseException] = {}

        def sync() -> None:
            imap.sync(store, "b", imap_server.secret, batch=2,
                      progress=lambda done, total: started.set())  # fmt: skip

        thread = _in_thread(sync, errors, "b")
        assert started.wait(60)
        store.remove_account("b")
        thread.join(120)
        if "b" in errors:  # the sync may have finished first; if not, it says why it stopped
            assert isinstance(errors["b"], AccountError), repr(errors["b"])
        assert store.accounts() == []
        assert store.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_connections_of_finished_threads_are_closed(tmp_path):
    threads = 8
    with Store(tmp_path / "p.sqlite3") as store:
        store.add_account("a")
        for _ in range(3):
            workers = [threading.Thread(target=store.accounts) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        store.accounts()
        assert len(store._connections) <= threads + 1
