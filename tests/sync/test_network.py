"""Nothing of the user's mail leaves for anywhere but their own servers: every socket a
sync, a draft upload or a draft generation opens goes to a configured server."""

from __future__ import annotations

import sys

import pytest

from tests.sync.conftest import append_all

_connections: list[tuple] = []
_recording = False


def _audit(event: str, args: tuple) -> None:
    if _recording and event == "socket.connect":
        _connections.append(args[1])


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one only records when asked


@pytest.fixture()
def recorded():
    global _recording
    _connections.clear()
    _recording = True
    yield _connections
    _recording = False


@pytest.mark.slow
def test_sockets_go_only_to_the_configured_servers(workspace, imap_server, recorded):
    from panza_core import secrets
    from panza_core.drafting import Drafter
    from panza_tui.cli.demo import ADDRESS
    from sync import accounts, drafts, gmail, imap
    from tests.helpers import demo_messages
    from tests.sync.fake_gmail import FakeGmail
    from tests.sync.test_gmail import creds_for

    ws = workspace
    append_all(imap_server, "Sent", demo_messages()[:8])
    fake = FakeGmail()
    try:
        for raw in demo_messages()[8:14]:
            fake.add(raw)
        ws.store.add_account("box", [ADDRESS])
        ws.store.set_server(
            "box",
            imap.ImapServer(
                host="127.0.0.1", user=imap_server.user, port=imap_server.port, security="plain"
            ).to_json(),
        )
        secrets.set_secret("box:imap", imap_server.secret)
        ws.store.add_account("g", [ADDRESS])
        ws.store.set_server("g", {"kind": "gmail", "root_url": fake.url})
        import json

        secrets.set_secret("g:gmail", json.dumps(gmail.token_json(creds_for(fake))))
        _connections.clear()  # setting up the servers above is the test's own traffic
        accounts.sync(ws, "box")
        accounts.sync(ws, "g")
        draft = ws.store.save_draft("box", "x", "Hi Tom,\n\nthe drill?\n", [], subject="Drill")
        drafts.save(ws.store, "box", draft, imap_server.secret)
        drafter = Drafter(ws.with_config(drafting={"max_tokens": 8}), "box")
        drafter.draft(drafter.request("Ask Tom for the drill"))
        fake_port = int(fake.url.rsplit(":", 1)[1])
    finally:
        fake.close()
    allowed = {("127.0.0.1", imap_server.port), ("127.0.0.1", fake_port)}
    assert recorded, "no connection was seen at all: the audit hook is not working"
    assert {tuple(address[:2]) for address in recorded} <= allowed
