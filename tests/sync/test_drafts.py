"""Drafts go back to the server's Drafts folder, replace their previous copy, and survive a
failed upload."""

from __future__ import annotations

import email
import email.policy

import pytest

from panza_core.errors import SyncError
from panza_core.store import Store
from panza_tui.cli.demo import ADDRESS
from sync import drafts
from tests.sync.conftest import client_for
from tests.sync.test_imap import add_account


@pytest.fixture()
def store(tmp_path, imap_server):
    with Store(tmp_path / "p.sqlite3") as s:
        add_account(s, imap_server)
        yield s


def read_drafts(server):
    """What a second mail client sees in Drafts: parsed messages and their flags."""
    client = client_for(server)
    client.select_folder("Drafts", readonly=True)
    found = client.fetch(client.search(["ALL"]), ["BODY.PEEK[]", "FLAGS"])
    client.logout()
    return [
        (email.message_from_bytes(d[b"BODY[]"], policy=email.policy.default), d[b"FLAGS"])
        for d in found.values()
    ]


def test_a_draft_is_readable_by_another_client_and_replaced_not_piled(store, imap_server):
    draft_id = store.save_draft(
        "maya", "Ask the neighbours to water my plants", "Hi Mrs Ferreira,\n\nCould you…\n",
        [], to_addrs="Ana Ferreira <ana.ferreira@example.org>", subject="Watering the plants",
        in_reply_to="<abc@example.org>",
    )  # fmt: skip
    drafts.save(store, "maya", draft_id, imap_server.secret)
    ((message, flags),) = read_drafts(imap_server)
    assert b"\\Draft" in flags
    assert message["From"] == ADDRESS
    assert message["To"] == "Ana Ferreira <ana.ferreira@example.org>"
    assert message["Subject"] == "Watering the plants"
    assert message["In-Reply-To"] == "<abc@example.org>"
    assert message["Date"] and message.get_content().startswith("Hi Mrs Ferreira")
    message_id = message["Message-ID"]

    store.save_draft(
        "maya",
        "same",
        "Hi Mrs Ferreira,\n\nv2\n",
        [],
        draft_id,
        to_addrs="ana.ferreira@example.org",
        subject="Watering the plants",
    )
    drafts.save(store, "maya", draft_id, imap_server.secret)
    ((message, _),) = read_drafts(imap_server)  # one copy, the new one, same Message-ID
    assert "v2" in message.get_content() and message["Message-ID"] == message_id


def test_a_failed_upload_keeps_the_draft_and_is_retried(store, imap_server):
    draft_id = store.save_draft("maya", "x", "Typed with care.\n", [], subject="Important")
    imap_server.stop()
    with pytest.raises(SyncError, match="cannot reach"):
        drafts.save(store, "maya", draft_id, imap_server.secret)
    kept = store.draft(draft_id)
    assert kept.text == "Typed with care.\n" and "cannot reach" in kept.server_error
    imap_server.restart()
    assert drafts.retry_failed(store, "maya", imap_server.secret) == (1, 0)
    assert store.draft(draft_id).server_error is None
    ((message, _),) = read_drafts(imap_server)
    assert message["Subject"] == "Important"


def test_inbox_and_sent_share_threads_and_a_reply_draft_threads_in_another_client(
    tmp_path, imap_server
):
    """usrp-users: Marcus's posts in Sent, the list's other mail in INBOX; the reply drafted
    to a received email is read back with its threading headers by a second client."""
    import mailbox

    from panza_core import replies
    from sync import imap
    from tests.conftest import shared
    from tests.sync.conftest import append_all

    me = "patchvonbraun@gmail.com"
    raws = [m.as_bytes() for m in mailbox.mbox(shared("mbox", "usrp-users-800.mbox"))][:300]
    mine = [raw for raw in raws if me.encode() in raw.split(b"\n\n", 1)[0].lower()]
    append_all(imap_server, "Sent", mine)
    append_all(imap_server, "INBOX", [raw for raw in raws if raw not in mine])
    with Store(tmp_path / "marcus.sqlite3") as store:
        add_account(store, imap_server)
        store.add_account("maya", [me])  # this server's user is Marcus here
        report = imap.sync(store, "maya", imap_server.secret)
        assert report.counts["received"] == store.count_messages("maya", received=True) > 150
        assert report.counts["kept"] == store.count_messages("maya") > 20
        answered = [
            m for m in store.messages("maya", received=True)
            if store.replies_to("maya", m.message_id or "")
        ]  # fmt: skip
        assert len(answered) >= 15
        parent = answered[0]
        thread = store.thread("maya", parent.thread_id)
        assert [m.date for m in thread] == sorted(m.date for m in thread)
        assert any(not m.received for m in thread) and parent in thread

        headers = replies.reply_headers(parent, [me], reply_all=True)
        draft_id = store.save_draft(
            "maya", "", "Try a newer UHD first.\n", [], to_addrs=headers.to, cc_addrs=headers.cc,
            subject=headers.subject, in_reply_to=headers.in_reply_to, refs=headers.references,
        )  # fmt: skip
        drafts.save(store, "maya", draft_id, imap_server.secret)
    ((message, _),) = read_drafts(imap_server)
    # A long Message-ID is folded onto its own line (RFC 5322 CFWS): compare unfolded.
    assert message["In-Reply-To"].strip() == parent.message_id
    assert message["References"].split()[-1] == parent.message_id
    if parent.refs:
        assert message["References"].split()[: len(parent.refs.split())] == parent.refs.split()
    assert message["Subject"] == replies.reply_subject(parent.subject)
    assert me not in (message["Cc"] or "").lower()


def test_without_uidplus_the_old_copy_is_found_by_message_id_and_others_mail_kept(
    store, imap_server, monkeypatch
):
    """A server without UIDPLUS (RFC 4315) reports no APPENDUID and has no UID EXPUNGE: the
    earlier copy is found by its Message-ID, and a plain EXPUNGE is never sent while another
    client's message waits flagged \\Deleted."""
    from imapclient import IMAPClient

    real_append, real_capability = IMAPClient.append, IMAPClient.has_capability

    def has_capability(self, name):
        return name != "UIDPLUS" and real_capability(self, name)

    def append(self, *args, **kwargs):  # "[APPENDUID 7 3] Append completed." loses its code
        return real_append(self, *args, **kwargs).split(b"]")[-1]

    monkeypatch.setattr(IMAPClient, "has_capability", has_capability)
    monkeypatch.setattr(IMAPClient, "append", append)
    other = client_for(imap_server)
    other.append("Drafts", b"Subject: theirs\r\nMessage-ID: <t@x>\r\n\r\nkeep me\r\n")
    other.select_folder("Drafts")
    other.delete_messages(other.search(["ALL"]))  # flagged \Deleted, not yet expunged
    other.logout()

    draft_id = store.save_draft("maya", "x", "Hi,\n\nv1\n", [], subject="Plants")
    first = drafts.save(store, "maya", draft_id, imap_server.secret)
    store.save_draft("maya", "x", "Hi,\n\nv2\n", [], draft_id, subject="Plants")
    second = drafts.save(store, "maya", draft_id, imap_server.secret)
    assert first and second and int(second) > int(first)  # UIDs found without APPENDUID
    ours = [(m, f) for m, f in read_drafts(imap_server) if m["Subject"] == "Plants"]
    live = [m for m, f in ours if b"\\Deleted" not in f]
    assert len(live) == 1 and "v2" in live[0].get_content()
    assert [m["Subject"] for m, _ in read_drafts(imap_server)].count("theirs") == 1
