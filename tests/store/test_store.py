import sqlite3

import pytest

from panza_core.errors import AccountError, PanzaError
from panza_core.store import Message, Store, content_hash
from panza_core.store.schema import MIGRATIONS as _MIGRATIONS


def test_schema_is_versioned_and_reopens(tmp_path):
    path = tmp_path / "p.sqlite3"
    Store(path).close()
    with Store(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(_MIGRATIONS)
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
        assert len(drafts) == 1 and drafts[0].text == "text v2"


def test_version_1_database_migrates_forward_keeping_its_data(tmp_path):
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(_MIGRATIONS[0] + "PRAGMA user_version=1;")
    db.execute("INSERT INTO accounts(name, created_at, active_adapter) VALUES ('me', 0, 7)")
    db.execute(
        "INSERT INTO messages(account, content_hash, text, imported_at) VALUES ('me','h','hi',0)"
    )
    db.execute(
        "INSERT INTO messages(account, content_hash, text, message_id, in_reply_to, refs, "
        "imported_at) VALUES ('me','h2','re','<c@x>','<b@x>','<a@x> <b@x>',0)"
    )
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(_MIGRATIONS)
        assert sorted(m.text for m in store.messages("me")) == ["hi", "re"]
        assert store.server("me") == {}
        assert store.account("me").active_export == 7  # schema 5 renamed the column
        # Mail stored before received mail existed is the user's own; threads are backfilled.
        assert store.count_messages("me", received=True) == 0
        assert [m.text for m in store.thread("me", "<a@x>")] == ["re"]
        # schema 4 rebuilt the table with AUTOINCREMENT and the same ids: the highest id,
        # once deleted, is not handed out again
        top = max(m.id for m in store.messages("me"))
        store.mark_deleted([top])
        store.purge_deleted("me")
        assert store.add_message("me", Message(text="new", subject="n")) == top + 1


def test_threads_join_by_references_or_by_a_stored_parent(tmp_path):
    with Store(tmp_path / "p.sqlite3") as store:
        store.add_account("me", ["me@x"])
        root = Message("Shall we meet?", "Meeting", "<a@x>", received=True, date="2026-01-01")
        store.add_message("me", root)
        # In-Reply-To alone (no References): joins the stored parent's thread.
        reply = Message("Yes, Tuesday.", "Re: Meeting", "<b@x>", in_reply_to="<a@x>",
                        date="2026-01-02")  # fmt: skip
        store.add_message("me", reply)
        # References name the root even when the middle message is missing.
        late = Message("Great.", "Re: Meeting", "<d@x>", in_reply_to="<c@x>",
                       refs="<a@x> <b@x> <c@x>", received=True, date="2026-01-04")  # fmt: skip
        store.add_message("me", late)
        store.add_message("me", Message("Other topic", "Hello", "<z@x>", received=True))
        assert [m.message_id for m in store.thread("me", "<a@x>")] == ["<a@x>", "<b@x>", "<d@x>"]
        assert store.reply_counts("me") == {"with_parent": 1, "without_parent": 0, "new": 0}
        assert [m.text for m in store.messages("me", received=True)] == [
            "Great.", "Shall we meet?", "Other topic",
        ]  # fmt: skip


def test_sync_state_uids_and_forgetting_a_folder(tmp_path):
    with Store(tmp_path / "p.sqlite3") as store:
        store.add_account("me")
        a = store.add_message("me", Message(text="first one", folder="Sent", uid=7))
        store.add_message("me", Message(text="second one", folder="Sent", uid=9))
        store.add_message("me", Message(text="from a file", folder="Sent.mbox"))
        store.set_sync_state("me", "Sent", uidvalidity=42, last_uid=9)
        state = store.sync_state("me", "Sent")
        assert (state.uidvalidity, state.last_uid) == (42, 9)
        assert store.uids("me", "Sent") == {7: a, 9: a + 1}
        store.forget_folder("me", "Sent")  # UIDVALIDITY changed: UIDs meaningless, mail kept
        assert store.sync_state("me", "Sent") is None and store.uids("me", "Sent") == {}
        assert store.count_messages("me") == 3
        # the resync finds each again and gives it its new UID, same row
        assert store.add_message("me", Message(text="first one", folder="Sent", uid=1)) == a
        assert store.uids("me", "Sent") == {1: a}


def test_server_deletions_leave_tombstones_learned_from_until_purged(tmp_path):
    with Store(tmp_path / "p.sqlite3") as store:
        store.add_account("me")
        gone = store.add_message("me", Message(text="a reply of mine", folder="Sent", uid=3))
        kept = store.add_message("me", Message(text="another of mine", folder="Sent", uid=4))
        store.put_instruction(store.message(gone).content_hash, "m", "p", "Answer Tom")
        store.mark_deleted([gone])
        assert [m.id for m in store.messages("me")] == [kept]  # hidden from the mailbox
        assert store.count_messages("me") == 1 and store.count_deleted("me") == 1
        assert store.uids("me", "Sent") == {4: kept}
        assert [m.id for m, _ in store.pairs("me", "m", "p")] == [gone]  # still learned from
        assert {m.id for m in store.messages("me", deleted=True)} == {gone, kept}
        # restored on the server (moved back from the trash): the same row is live again
        back = Message(text="a reply of mine", folder="Sent", uid=9)
        assert store.add_message("me", back) == gone
        assert store.count_deleted("me") == 0 and store.uids("me", "Sent") == {4: kept, 9: gone}
        store.mark_deleted([gone])
        assert store.purge_deleted("me") == 1
        assert store.count_messages("me") == 1 and store.count_deleted("me") == 0
        # ids are never reused: the retrieval index keys vectors by them
        assert store.add_message("me", Message(text="brand new", folder="Sent")) > gone
