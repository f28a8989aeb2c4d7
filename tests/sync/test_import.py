import json
import mailbox

import pytest

from panza_core.errors import ImportSourceError
from panza_core.store import Store
from panza_tui.cli.demo import ADDRESS
from panza_tui.cli.demo import mailbox as demo_mailbox
from sync.importer import import_path
from tests.conftest import shared


@pytest.fixture()
def store(tmp_path):
    with Store(tmp_path / "p.sqlite3") as s:
        yield s


def test_demo_mailbox_counts_every_reason_and_reimport_is_idempotent(store):
    store.add_account("demo", [ADDRESS])
    report = import_path(store, "demo", demo_mailbox())
    assert dict(report.counts) == {
        "kept": 65,
        "too_short": 1,
        "forwarded": 1,
        "received": 1,
        "empty": 1,
    }
    again = import_path(store, "demo", demo_mailbox())
    assert dict(again.counts) == {
        "duplicate": 66,
        "too_short": 1,
        "forwarded": 1,
        "empty": 1,
    }
    assert store.count_messages("demo") == 65
    assert store.count_messages("demo", received=True) == 1
    texts = [m.text for m in store.messages("demo")]
    assert all("wrote:" not in t and not t.startswith(">") for t in texts)
    assert sum(t.rstrip().endswith("Cheers,\nMaya") for t in texts) >= 40


def test_a_list_members_mbox_is_his_mail_and_his_inbox_with_threads(store):
    """usrp-users: patchvonbraun@gmail.com wrote 173 messages, 156 replies whose parent is
    in the file; everything else is his received mail."""
    store.add_account("marcus", ["patchvonbraun@gmail.com"])
    report = import_path(store, "marcus", shared("mbox", "usrp-users-800.mbox"))
    assert report.counts["kept"] + report.counts["too_short"] + report.counts["empty"] == 173
    assert report.counts["received"] == store.count_messages("marcus", received=True) >= 600
    assert report.total == 800 and report.counts["unparseable"] == 0
    counts = store.reply_counts("marcus")
    assert sum(counts.values()) == store.count_messages("marcus") == report.counts["kept"]
    # 146 parents are stored (the others were his own too-short notes); quotes add more.
    assert counts["with_parent"] >= 150 and counts["without_parent"] <= 5
    mine = store.messages("marcus")
    assert all(m.from_addr.lower().endswith("<patchvonbraun@gmail.com>") for m in mine)
    reply = next(m for m in mine if m.in_reply_to and store.by_message_id("marcus", m.in_reply_to))
    parent = store.by_message_id("marcus", reply.in_reply_to)
    assert parent.received and parent.thread_id == reply.thread_id
    thread = store.thread("marcus", reply.thread_id)
    dates = [m.date for m in thread]
    assert dates == sorted(dates) and thread.index(parent) < thread.index(reply)
    assert reply in store.replies_to("marcus", parent.message_id)
    assert store.messages("marcus", search="patchvonbraun") == mine  # sent view only


def test_panza_jsonl_and_a_bad_line(store, tmp_path):
    store.add_account("david")
    report = import_path(store, "david", shared("panza", "david.jsonl"))
    assert report.counts["kept"] + report.counts["too_short"] == 166
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"email": "one two three four five six seven eight nine ten eleven"}\n'
        "not json\n" + json.dumps({"subject": "no body"}) + "\n"
    )
    report = import_path(store, "david", bad)
    assert report.counts == {"kept": 1, "unparseable": 2}
    assert [source for source, _ in report.errors] == ["bad.jsonl:2", "bad.jsonl:3"]


def test_maildir_and_eml_folder(store, tmp_path):
    store.add_account("me", [ADDRESS])
    source = mailbox.mbox(demo_mailbox())
    box = mailbox.Maildir(tmp_path / "Sent", create=True)
    emls = tmp_path / "emls"
    emls.mkdir()
    for i, message in enumerate(source):
        if i < 5:
            box.add(message)
            (emls / f"{i}.eml").write_bytes(message.as_bytes())
    assert import_path(store, "me", tmp_path / "Sent").counts["kept"] == 5
    assert import_path(store, "me", emls).counts["duplicate"] == 5


def test_enron_single_message_files(store):
    store.add_account("vince", ["vince.kaminski@enron.com"])
    folder = shared("enron", "small-50-users")
    kept = 0
    for path in sorted(folder.glob("kaminski-v_*sent*")):
        kept += import_path(store, "vince", path).counts["kept"]
    assert kept == store.count_messages("vince") >= 8


def test_unreadable_sources_say_why(store, tmp_path):
    store.add_account("me")
    with pytest.raises(ImportSourceError, match="no such file"):
        import_path(store, "me", tmp_path / "missing.mbox")
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(ImportSourceError, match="no mail found"):
        import_path(store, "me", tmp_path / "empty-dir")


@pytest.mark.parametrize("name", ["demo", "usrp"])
def test_the_streaming_mbox_reader_splits_as_the_stdlib_does(name, tmp_path):
    """``files.mbox_messages`` reads one message at a time and gives exactly the messages
    ``mailbox.mbox`` gives (which first indexes the whole file)."""
    import mailbox

    from panza_tui.cli.demo import mailbox as demo_mailbox
    from sync import files

    path = demo_mailbox() if name == "demo" else shared("mbox", "usrp-users-800.mbox")
    box = mailbox.mbox(path, create=False)
    expected = [box.get_bytes(key) for key in box.iterkeys()]
    box.close()
    with open(path, "rb") as handle:
        assert list(files.mbox_messages(handle)) == expected
    odd = tmp_path / "odd.mbox"  # text before the first separator, no blank line before one
    odd.write_bytes(b"junk\nFrom a\nSubject: 1\n\nbody\nFrom b\nSubject: 2\n\nlast\n\n")
    box = mailbox.mbox(odd, create=False)
    with odd.open("rb") as handle:
        assert list(files.mbox_messages(handle)) == [box.get_bytes(k) for k in box.iterkeys()]


def test_links_inside_the_folder_are_not_followed_but_a_link_given_is(store, tmp_path):
    """An import reads only what lies in the folder given (issue 30): a link to a file or a
    folder outside it, or a maildir message that is a link, is counted as ``symlink`` and
    not read; a link given as the path itself is what the user named, and is followed."""
    store.add_account("me", [ADDRESS])
    messages = [m.as_bytes() for m in list(mailbox.mbox(demo_mailbox()))[:6]]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "private.eml").write_bytes(messages[0])
    (outside / "folder").mkdir()
    (outside / "folder" / "deep.eml").write_bytes(messages[1])
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "mine.eml").write_bytes(messages[2])
    (folder / "link.eml").symlink_to(outside / "private.eml")
    (folder / "linked-folder").symlink_to(outside / "folder")
    box = mailbox.Maildir(folder / "Sent", create=True)
    box.add(messages[3])
    (folder / "Sent" / "cur" / "1700000000.link.host:2,S").symlink_to(outside / "private.eml")
    report = import_path(store, "me", folder)
    assert report.counts["symlink"] == 2  # link.eml and the maildir message
    imported = {m.content_hash for m in store.messages("me")}
    assert len(imported) == 2  # mine.eml and the maildir's own message, nothing from outside
    given = tmp_path / "given.eml"
    given.symlink_to(outside / "private.eml")
    assert import_path(store, "me", given).counts["kept"] == 1
