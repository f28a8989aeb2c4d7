"""Drafts go back to the server's Drafts folder, replace their previous copy, and survive a
failed upload."""

from __future__ import annotations

import email
import email.policy

import pytest

from panza_tui.cli.demo import ADDRESS
from panza_tui.core.errors import SyncError
from panza_tui.core.store import Store
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
    drafts.save(store, "maya", draft_id, imap_server.password)
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
    drafts.save(store, "maya", draft_id, imap_server.password)
    ((message, _),) = read_drafts(imap_server)  # one copy, the new one, same Message-ID
    assert "v2" in message.get_content() and message["Message-ID"] == message_id


def test_a_failed_upload_keeps_the_draft_and_is_retried(store, imap_server):
    draft_id = store.save_draft("maya", "x", "Typed with care.\n", [], subject="Important")
    imap_server.stop()
    with pytest.raises(SyncError, match="cannot reach"):
        drafts.save(store, "maya", draft_id, imap_server.password)
    kept = store.draft(draft_id)
    assert kept["text"] == "Typed with care.\n" and "cannot reach" in kept["server_error"]
    imap_server.restart()
    assert drafts.retry_failed(store, "maya", imap_server.password) == (1, 0)
    assert store.draft(draft_id)["server_error"] is None
    ((message, _),) = read_drafts(imap_server)
    assert message["Subject"] == "Important"
