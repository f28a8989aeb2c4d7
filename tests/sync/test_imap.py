"""IMAP sync against a real Dovecot: full, incremental, deletions, UIDVALIDITY, faults."""

from __future__ import annotations

import email
import subprocess
import sys

import pytest

from panza_core.errors import AccountError, AuthError, SyncError
from panza_core.secrets import Secret
from panza_core.store import Store
from panza_tui.cli.demo import ADDRESS
from panza_tui.cli.demo import mailbox as demo_mailbox
from sync import imap
from sync.imap import fetch as imap_fetch
from sync.importer import import_path
from tests.conftest import shared
from tests.helpers import as_sent_folder, demo_messages
from tests.sync.conftest import append_all, client_for
from tests.system_packages import require


@pytest.fixture()
def store(tmp_path):
    with Store(tmp_path / "p.sqlite3") as s:
        yield s


def add_account(store, server, **overrides):
    store.add_account("maya", [ADDRESS])
    settings = imap.ImapServer(
        host="127.0.0.1", user=server.user, port=server.port, security="plain", **overrides
    )
    store.set_server("maya", settings.to_json())
    return settings


def test_full_then_incremental_sync_matches_a_file_import(store, imap_server, tmp_path):
    messages = demo_messages()
    append_all(imap_server, "Sent", messages[:40])
    add_account(store, imap_server)
    first = imap.sync(store, "maya", imap_server.secret, batch=16)
    assert first.folder == "Sent, INBOX" and sum(first.counts.values()) == 40

    append_all(imap_server, "Sent", messages[40:])
    second = imap.sync(store, "maya", imap_server.secret, batch=16)
    assert sum(second.counts.values()) == len(messages) - 40  # only the new ones fetched
    third = imap.sync(store, "maya", imap_server.secret)
    assert sum(third.counts.values()) == 0 and not third.deleted_ids

    with Store(tmp_path / "file.sqlite3") as reference:
        reference.add_account("maya", [ADDRESS])
        expected = as_sent_folder(import_path(reference, "maya", demo_mailbox()).counts)
        assert first.counts + second.counts == expected
        assert {m.content_hash for m in store.messages("maya")} == {
            m.content_hash for m in reference.messages("maya")
        }
    uids = store.uids("maya", "Sent")
    assert len(uids) == expected["kept"]


def test_a_large_sync_extracts_in_worker_processes_with_the_same_result(
    store, imap_server, tmp_path, monkeypatch
):
    monkeypatch.setattr(imap_fetch, "PARALLEL_FROM", 10)
    monkeypatch.setattr(imap_fetch.threads, "available_cores", lambda: 2)
    import concurrent.futures

    mapped = []

    class Pool(concurrent.futures.ProcessPoolExecutor):
        def map(self, fn, *iterables, **kwargs):
            jobs = list(iterables[0])
            mapped.extend(jobs)
            return super().map(fn, jobs, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Pool)
    append_all(imap_server, "Sent", demo_messages())
    add_account(store, imap_server)
    report = imap.sync(store, "maya", imap_server.secret, batch=25)
    assert len(mapped) == len(demo_messages())  # every message went to the worker pool
    with Store(tmp_path / "file.sqlite3") as reference:
        reference.add_account("maya", [ADDRESS])
        assert report.counts == as_sent_folder(
            import_path(reference, "maya", demo_mailbox()).counts
        )
        assert {m.text for m in store.messages("maya")} == {
            m.text for m in reference.messages("maya")
        }


def test_sync_never_marks_mail_seen(store, imap_server):
    append_all(imap_server, "Sent", demo_messages()[:5])
    add_account(store, imap_server)
    imap.sync(store, "maya", imap_server.secret)
    client = client_for(imap_server)
    client.select_folder("Sent", readonly=True)
    flags = client.get_flags(client.search(["ALL"]))
    assert flags and all(b"\\Seen" not in f for f in flags.values())


def test_deleted_on_the_server_is_kept_here_as_a_tombstone(store, imap_server):
    append_all(imap_server, "Sent", demo_messages()[:10])
    add_account(store, imap_server)
    imap.sync(store, "maya", imap_server.secret)
    before = store.uids("maya", "Sent")
    victim = min(before)
    client = client_for(imap_server)
    client.select_folder("Sent")
    client.delete_messages([victim])
    client.expunge()
    report = imap.sync(store, "maya", imap_server.secret)
    assert report.deleted_ids == [before[victim]]
    assert victim not in store.uids("maya", "Sent")
    assert store.count_messages("maya") == len(before) - 1 and store.count_deleted("maya") == 1
    again = imap.sync(store, "maya", imap_server.secret)  # nothing more to delete
    assert not again.deleted_ids and store.count_deleted("maya") == 1


def test_uidvalidity_change_resyncs_without_duplicates(store, imap_server):
    messages = demo_messages()[:12]
    append_all(imap_server, "Sent", messages)
    add_account(store, imap_server)
    imap.sync(store, "maya", imap_server.secret)
    count = store.count_messages("maya")
    client = client_for(imap_server)
    client.delete_folder("Sent")
    client.create_folder("Sent")  # a new folder: new UIDVALIDITY, UIDs start again at 1
    client.logout()
    append_all(imap_server, "Sent", messages)
    report = imap.sync(store, "maya", imap_server.secret)
    assert report.resynced and report.counts["kept"] == count
    assert store.count_messages("maya") == count


def test_connection_cut_mid_sync_loses_and_duplicates_nothing(store, imap_server):
    from tests.sync.proxy import CuttableProxy

    append_all(imap_server, "Sent", demo_messages())
    proxy = CuttableProxy(imap_server.port)
    store.add_account("maya", [ADDRESS])
    store.set_server(
        "maya",
        imap.ImapServer(
            host="127.0.0.1", user=imap_server.user, port=proxy.port, security="plain"
        ).to_json(),
    )

    def cut(done, total):
        if done == 20:
            proxy.cut()  # the network drops between two batches

    try:
        with pytest.raises(SyncError, match="run 'panza sync' again"):
            imap.sync(store, "maya", imap_server.secret, batch=10, progress=cut)
        kept_before = store.count_messages("maya")
        assert 0 < kept_before < 65
        report = imap.sync(store, "maya", imap_server.secret, batch=10)
    finally:
        proxy.close()
    assert store.count_messages("maya") == 65
    assert report.counts["kept"] == 65 - kept_before


def test_server_restart_between_syncs(store, imap_server):
    append_all(imap_server, "Sent", demo_messages()[:5])
    add_account(store, imap_server)
    imap.sync(store, "maya", imap_server.secret)
    imap_server.restart()
    append_all(imap_server, "Sent", demo_messages()[5:8])
    assert sum(imap.sync(store, "maya", imap_server.secret).counts.values()) == 3


def test_a_message_the_parser_chokes_on_is_counted(store, imap_server):
    junk = b"From: maya@okafor.example\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n\xff\xfe"
    append_all(imap_server, "Sent", [junk, *demo_messages()[:3]])
    add_account(store, imap_server)
    report = imap.sync(store, "maya", imap_server.secret)
    assert sum(report.counts.values()) == 4
    assert report.counts["kept"] == 3


def test_wrong_password_is_clear_and_stores_nothing(imap_server, home):
    run = subprocess.run(
        [sys.executable, "-m", "panza_tui", "account", "add", "maya", "--imap", "127.0.0.1",
         "--port", str(imap_server.port), "--security", "plain", "--user", imap_server.user,
         "--password-stdin"],
        input="not-the-password\n", capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 2
    assert "refused the login" in run.stderr and "Traceback" not in run.stderr
    with Store() as store:
        assert store.accounts() == []


@pytest.mark.slow
def test_account_add_then_sync_from_the_cli(imap_server, home):
    append_all(imap_server, "Sent", demo_messages())
    add = subprocess.run(
        [sys.executable, "-m", "panza_tui", "account", "add", "maya", "--imap", "127.0.0.1",
         "--port", str(imap_server.tls_port), "--security", "ssl", "--ca-file",
         str(imap_server.cert), "--user", imap_server.user, "--address", ADDRESS,
         "--password-stdin"],
        input=f"{imap_server.password}\n", capture_output=True, text=True,
    )  # fmt: skip
    assert add.returncode == 0, add.stderr
    assert "sent folder 'Sent'" in add.stderr
    sync = subprocess.run(
        [sys.executable, "-m", "panza_tui", "sync", "--account", "maya"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert sync.returncode == 0, sync.stderr
    assert "65 new" in sync.stderr
    with Store() as store:
        assert store.count_messages("maya") == 65
        stored = store.db.execute("SELECT server FROM accounts").fetchone()[0]
        assert imap_server.password not in stored  # the secret lives in the keyring/0600 file
    secrets_file = home / "secrets.json"
    assert secrets_file.stat().st_mode & 0o777 == 0o600


def test_tls_is_verified(imap_server):
    trusted = imap.ImapServer(
        host="127.0.0.1", user=imap_server.user, port=imap_server.tls_port,
        ca_file=str(imap_server.cert),
    )  # fmt: skip
    imap.connect(trusted, imap_server.secret).logout()
    starttls = imap.ImapServer(
        host="127.0.0.1", user=imap_server.user, port=imap_server.port, security="starttls",
        ca_file=str(imap_server.cert),
    )  # fmt: skip
    imap.connect(starttls, imap_server.secret).logout()
    untrusted = imap.ImapServer(host="127.0.0.1", user=imap_server.user, port=imap_server.tls_port)
    with pytest.raises(SyncError, match="not trusted"):
        imap.connect(untrusted, imap_server.secret)


def test_plaintext_off_loopback_is_refused_before_connecting():
    server = imap.ImapServer(host="imap.example.org", user="u", security="plain", timeout=0.1)
    with pytest.raises(SyncError, match="clear text"):
        imap.connect(server, Secret("secret"))


@pytest.mark.parametrize("mode", ["tls", "ssl/tls", "", "none"])
def test_an_unknown_security_mode_fails_closed_before_connecting(mode):
    """Issue 13: "--security tls" used to connect without TLS and skip the clear-text
    refusal, so the password went out in clear. Nothing may be sent at all now."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    server = imap.ImapServer(host="127.0.0.1", user="u", port=listener.getsockname()[1],
                             security=mode, timeout=1)  # fmt: skip
    with pytest.raises(SyncError, match="not connecting"):
        imap.connect(server, Secret("secret"))
    with pytest.raises(socket.timeout):
        listener.accept()  # no connection was ever opened
    listener.close()
    with pytest.raises(AccountError, match="use ssl .* starttls .* or plain"):
        imap.security_mode(mode)


def test_security_modes_are_case_insensitive(imap_server):
    assert [imap.security_mode(m) for m in ("SSL", " StartTLS ", "plain")] == list(imap.SECURITY)
    server = imap.ImapServer.from_json(
        {"kind": "imap", "host": "127.0.0.1", "user": imap_server.user,
         "port": imap_server.port, "security": "PLAIN"}
    )  # fmt: skip
    assert server.security == "plain"
    imap.connect(server, imap_server.secret).logout()


def test_starttls_without_the_capability_is_a_sync_error_not_a_clear_login():
    """A server (or a man in the middle) that hides STARTTLS gets no password."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    heard: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        conn.sendall(b"* OK IMAP4rev1 ready\r\n")
        stream = conn.makefile("rb")
        while line := stream.readline():
            heard.append(line)
            tag = line.split(b" ", 1)[0]
            if b"CAPABILITY" in line.upper():
                conn.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
            else:
                conn.sendall(tag + b" BAD no\r\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    server = imap.ImapServer(host="127.0.0.1", user="u", port=listener.getsockname()[1],
                             security="starttls", timeout=2)  # fmt: skip
    with pytest.raises(SyncError, match="does not offer STARTTLS"):
        imap.connect(server, Secret("secret"))
    listener.close()
    assert heard and not any(b"LOGIN" in line.upper() or b"secret" in line for line in heard)


def test_wrong_password_raises_auth_error(imap_server):
    server = imap.ImapServer(host="127.0.0.1", user=imap_server.user, port=imap_server.port,
                             security="plain")  # fmt: skip
    with pytest.raises(AuthError, match="refused the login"):
        imap.connect(server, Secret("wrong"))


def test_draft_saved_replaces_its_previous_version(store, imap_server):
    add_account(store, imap_server)
    first = b"From: maya@okafor.example\r\nSubject: Plants\r\nMessage-ID: <d1@x>\r\n\r\nv1\r\n"
    second = first.replace(b"v1", b"v2")
    uid = imap.append_draft(store, "maya", imap_server.secret, first)
    imap.append_draft(store, "maya", imap_server.secret, second, previous_uid=uid)
    client = client_for(imap_server)
    client.select_folder("Drafts", readonly=True)
    found = client.fetch(client.search(["ALL"]), ["BODY.PEEK[]", "FLAGS"])
    assert len(found) == 1
    (data,) = found.values()
    assert b"\\Draft" in data[b"FLAGS"]
    assert email.message_from_bytes(data[b"BODY[]"]).get_payload().strip() == "v2"


def test_real_mailing_list_and_enron_mail_land_as_a_file_import_would(store, imap_server, tmp_path):
    from sync import files

    raw = [item for _, item in files.read(shared("mbox", "usrp-users-800.mbox"))]
    raw += [p.read_bytes() for p in sorted(shared("enron", "small-50-users").glob("*sent*"))]
    append_all(imap_server, "Sent", raw)
    store.add_account("list")  # no addresses: keep mail from anyone
    store.set_server(
        "list",
        imap.ImapServer(
            host="127.0.0.1", user=imap_server.user, port=imap_server.port, security="plain"
        ).to_json(),
    )
    report = imap.sync(store, "list", imap_server.secret)
    assert sum(report.counts.values()) == len(raw)
    assert report.counts["kept"] > 800 and report.counts["unparseable"] == 0


@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
def test_oauth_login_refreshes_the_access_token_at_the_token_endpoint(store, mechanism):
    import json

    from tests.sync import dovecot
    from tests.sync.fake_gmail import FakeGmail

    require("dovecot")
    oauth = FakeGmail()  # stands in for the provider: token endpoint + RFC 7662 introspection
    server = dovecot.start(tls=False, introspection_url=f"{oauth.url}/introspect")
    try:
        append_all(server, "Sent", demo_messages()[:6])
        store.add_account("maya", [ADDRESS])
        settings = imap.ImapServer(
            host="127.0.0.1", user=server.user, port=server.port, security="plain",
            auth=mechanism, oauth_token_uri=f"{oauth.url}/token", oauth_client_id="cid",
        )  # fmt: skip
        store.set_server("maya", settings.to_json())
        secret = Secret(json.dumps({"refresh_token": "refresh-1", "client_secret": "csecret"}))
        report = imap.sync(store, "maya", secret)
        assert sum(report.counts.values()) == 6
        assert oauth.grants == ["refresh_token"]
        revoked = Secret(json.dumps({"refresh_token": "revoked", "client_secret": "csecret"}))
        with pytest.raises(AuthError, match="refused the refresh token"):
            imap.connect(settings, revoked)
    finally:
        server.stop()
        oauth.close()


def test_the_cli_refuses_an_unknown_security_mode_before_asking_anything(home):
    from typer.testing import CliRunner

    from panza_tui.cli import app

    result = CliRunner().invoke(
        app, ["account", "add", "me", "--imap", "imap.example.org", "--user", "me@example.org",
              "--security", "TLS"],
        input="secret\n",
    )  # fmt: skip
    assert isinstance(result.exception, AccountError)
    assert "unknown --security 'TLS'" in str(result.exception)
    assert "password" not in result.output  # refused before the password prompt


@pytest.mark.parametrize(
    "uri", ["http://oauth.example.org/token", "ftp://127.0.0.1/token", "//x/token"]
)
def test_a_refresh_token_never_goes_to_a_clear_text_endpoint_off_this_machine(uri, monkeypatch):
    import requests

    from sync import gmail

    monkeypatch.setattr(requests, "post", lambda *a, **k: pytest.fail("a request was made"))
    server = imap.ImapServer(host="imap.example.org", user="u", auth="xoauth2",
                             oauth_token_uri=uri)  # fmt: skip
    with pytest.raises(SyncError, match="refusing to send an OAuth refresh token"):
        imap.access_token(server, Secret('{"refresh_token": "r"}'))
    with pytest.raises(SyncError, match="not https"):
        gmail.credentials({"refresh_token": "r", "token_uri": uri})
    for allowed in ("https://oauth2.googleapis.com/token", "http://127.0.0.1:8080/token"):
        assert gmail.credentials({"refresh_token": "r", "token_uri": allowed}).token_uri == allowed


def test_a_token_endpoint_answering_html_or_a_damaged_token_is_one_clear_error():
    import json

    from tests.sync.fake_gmail import FakeGmail

    oauth = FakeGmail()
    try:
        settings = imap.ImapServer(host="127.0.0.1", user="u", auth="xoauth2",
                                   oauth_token_uri=f"{oauth.url}/token")  # fmt: skip
        oauth.faults.append(("token", "html"))
        secret = Secret(json.dumps({"refresh_token": "refresh-1", "client_secret": "csecret"}))
        with pytest.raises(SyncError, match="not JSON"):
            imap.access_token(settings, secret)
        with pytest.raises(AuthError, match="damaged"):
            imap.access_token(settings, Secret("refresh-1"))  # not the JSON we store
        assert imap.access_token(settings, secret)  # the endpoint is fine again
    finally:
        oauth.close()


def test_a_huge_message_is_fetched_without_its_attachment_and_keeps_its_text(
    store, imap_server, monkeypatch
):
    from email.message import EmailMessage

    big = EmailMessage()
    big["From"], big["To"], big["Subject"] = ADDRESS, "tom@example.org", "The scans"
    big["Message-ID"] = "<scans@okafor.example>"
    big.set_content("Hi Tom,\n\nHere are the scans of the contract you asked for yesterday.\n")
    big.add_attachment(bytes(range(256)) * 8192, maintype="application", subtype="pdf",
                       filename="scans.pdf")  # 2 MiB  # fmt: skip
    append_all(imap_server, "Sent", [bytes(big), *demo_messages()[:5]])
    monkeypatch.setattr(imap_fetch, "MAX_FETCH_BYTES", 2**20)
    monkeypatch.setattr(imap_fetch, "PARTIAL_BODY_BYTES", 16 * 2**10)
    from imapclient import IMAPClient

    fetched: list[int] = []  # bytes of every body the server sent
    real_fetch = IMAPClient.fetch

    def fetch(self, messages, data, *args, **kwargs):
        answer = real_fetch(self, messages, data, *args, **kwargs)
        fetched.extend(len(v) for item in answer.values() for k, v in item.items()
                       if k.startswith(b"BODY"))  # fmt: skip
        return answer

    monkeypatch.setattr(IMAPClient, "fetch", fetch)
    add_account(store, imap_server)
    report = imap.sync(store, "maya", imap_server.secret)
    assert fetched and max(fetched) <= 20 * 2**10  # the 2 MiB attachment never came
    assert report.counts["kept"] == 6
    scans = store.by_message_id("maya", "<scans@okafor.example>")
    assert scans is not None and scans.text.startswith("Hi Tom,")
    assert "contract you asked for" in scans.text and len(scans.text) < 2000
