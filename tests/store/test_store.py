import sqlite3

import pytest

from panza_tui.errors import AccountError, PanzaError
from panza_tui.store import Message, Store, content_hash


def test_schema_is_versioned_and_reopens(tmp_path):
    path = tmp_path / "p.sqlite3"
    Store(path).close()
    with Store(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == 1
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_newer_schema_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "p.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(PanzaError, match="newer than this Panza"):
        Store(path)


def test_a_file_that_is_not_a_database_names_the_file(tmp_path):
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(PanzaError, match="junk.sqlite3"):
        Store(path)


def test_dedupe_by_message_id_and_by_content(tmp_path):
    with Store(tmp_path / "p.sqlite3") as store:
        store.add_account("me", ["Me@Example.org"])
        assert store.addresses("me") == ["me@example.org"]
        first = store.add_message("me", Message(text="Hello there friend", message_id="<a@x>"))
        assert first is not None
        # same Message-ID, different text (re-encoded copy): a duplicate
        assert (
            store.add_message("me", Message(text="Hello there, friend", message_id="<a@x>")) is None
        )
        # no Message-ID, same content modulo trailing spaces: a duplicate
        assert store.add_message("me", Message(text="Hello there friend  \n")) is None
        assert store.add_message("me", Message(text="Something else entirely")) is not None
        assert store.count_messages("me") == 2


def test_content_hash_ignores_trailing_whitespace_only():
    assert content_hash("s", "a\nb  \n") == content_hash("s", "a\nb")
    assert content_hash("s", "a\nb") != content_hash("t", "a\nb")


def test_unknown_account_lists_known_ones(tmp_path):
    with Store(tmp_path / "p.sqlite3") as store:
        store.add_account("alice")
        with pytest.raises(AccountError, match="known: alice"):
            store.account("bob")
        with pytest.raises(AccountError, match="invalid account name"):
            store.add_account("../etc")


def test_pairs_runs_and_drafts(tmp_path):
    with Store(tmp_path / "p.sqlite3") as store:
        store.add_account("me")
        row = store.add_message(
            "me", Message(text="Please send the report by Friday", subject="Report")
        )
        message = store.message(row)
        store.put_instruction(message.content_hash, "m", "p", "Ask for the report by Friday.")
        assert [(m.id, i) for m, i in store.pairs("me", "m", "p")] == [
            (row, "Ask for the report by Friday.")
        ]
        assert list(store.pairs("me", "other-model", "p")) == []

        run = store.start_run("me", "train", "h1", {"lr": 1})
        assert store.find_run("me", "train", "h1") is None  # still running: not reusable
        store.finish_run(run, "done", "/x", {"loss": 1.5})
        assert store.find_run("me", "train", "h1").metrics == {"loss": 1.5}
        assert store.latest_run("me", "train").id == run

        draft = store.save_draft("me", "instr", "text v1", [{"id": row, "score": 0.5}])
        assert store.save_draft("me", "instr", "text v2", [], draft) == draft
        drafts = store.drafts("me")
        assert len(drafts) == 1 and drafts[0]["text"] == "text v2"
