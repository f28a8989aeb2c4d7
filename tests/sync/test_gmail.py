"""Gmail sync with the real google-api-python-client against a local Gmail stand-in."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest

from panza_core import replies
from panza_core.errors import AuthError, SyncError
from panza_core.secrets import Secret
from panza_core.store import Store
from panza_tui.cli.demo import ADDRESS
from panza_tui.cli.demo import mailbox as demo_mailbox
from sync import gmail
from sync.importer import import_path
from tests.helpers import as_sent_folder, demo_messages, raw_email
from tests.system_packages import require

LONG = "Could you send me the minutes of yesterday's meeting before the end of the week please"


@pytest.fixture()
def store(tmp_path):
    with Store(tmp_path / "p.sqlite3") as s:
        s.add_account("maya", [ADDRESS])
        yield s


def creds_for(fake, token="valid-token", refresh="refresh-1", expired=False):
    from datetime import datetime, timedelta

    info = {
        "token": token, "refresh_token": refresh, "token_uri": f"{fake.url}/token",
        "client_id": "cid", "client_secret": "csecret", "scopes": gmail.SCOPES,
    }  # fmt: skip
    creds = gmail.credentials(info)
    if expired:
        creds.expiry = datetime.utcnow() - timedelta(minutes=5)  # google-auth uses naive UTC
    return creds


def test_full_sync_pages_and_matches_a_file_import(store, fake, tmp_path):
    for raw in demo_messages():
        fake.add(raw)
    received = raw_email(LONG, sender="Tom <tom@example.org>", msgid="<in@x.org>")
    fake.add(received, labels=["INBOX"])
    report = gmail.sync(store, "maya", creds_for(fake), fake.url)
    with Store(tmp_path / "ref.sqlite3") as reference:
        reference.add_account("maya", [ADDRESS])
        expected = as_sent_folder(import_path(reference, "maya", demo_mailbox()).counts)
    expected["received"] += 1  # the inbox's one email
    assert report.counts == expected
    assert (
        sum(
            r.startswith("GET /gmail/v1/users/me/messages") and r.count("/") == 5
            for r in fake.requests
        )
        == 69 // fake.page_size + 1 + 1
    )  # every page of SENT was read, and the inbox's one page
    assert [m.message_id for m in store.messages("maya", received=True)] == ["<in@x.org>"]
    assert store.sync_state("maya", gmail.FOLDER).history_id == str(fake.history_id)


def test_incremental_sync_by_history_adds_and_deletes(store, fake):
    raws = demo_messages()
    ids = [fake.add(raw) for raw in raws[:20]]
    gmail.sync(store, "maya", creds_for(fake), fake.url)
    before = store.count_messages("maya")
    new = [fake.add(raw) for raw in raws[20:23]]
    fake.delete(ids[0])
    fake.requests.clear()
    report = gmail.sync(store, "maya", creds_for(fake), fake.url)
    assert sum(report.counts.values()) == 3
    assert not any(r == "GET /gmail/v1/users/me/messages" for r in fake.requests)  # no listing
    assert len(report.deleted_ids) == 1
    assert store.count_messages("maya") == before + report.counts["kept"] - 1
    assert {m.source for m in store.messages("maya")} >= {f"gmail/{i}" for i in new[:1]}


def test_expired_history_id_triggers_a_clean_full_resync(store, fake):
    for raw in demo_messages()[:10]:
        fake.add(raw)
    gmail.sync(store, "maya", creds_for(fake), fake.url)
    count = store.count_messages("maya")
    fake.oldest_history = fake.history_id + 1
    fake.add(demo_messages()[12])
    fake.delete(next(iter(fake.messages)))
    fake.requests.clear()
    report = gmail.sync(store, "maya", creds_for(fake), fake.url)
    assert report.resynced and len(report.deleted_ids) == 1
    assert sum(report.counts.values()) == 1  # only the new message was fetched
    assert store.count_messages("maya") == count - 1 + report.counts["kept"]
    assert len({m.content_hash for m in store.messages("maya")}) == store.count_messages("maya")


def test_inbox_and_sent_share_gmail_threads_and_a_reply_draft_joins_its_thread(store, fake):
    from sync import drafts

    question = raw_email(LONG + "?", sender="Tom <tom@example.org>", msgid="<q@x.org>")
    fake.add(question, labels=["INBOX"], thread="t1")
    answer = raw_email(LONG + ".", sender=f"Maya <{ADDRESS}>", msgid="<a@x.org>",
                       extra="In-Reply-To: <q@x.org>\nReferences: <q@x.org>\n",
                       date="Tue, 03 Mar 2026 11:00:00 +0100")  # fmt: skip
    fake.add(answer, thread="t1")
    fake.add(raw_email(LONG + "!", sender=f"Maya <{ADDRESS}>", msgid="<new@x.org>"))
    gmail.sync(store, "maya", creds_for(fake), fake.url)
    parent = store.by_message_id("maya", "<q@x.org>")
    assert parent.received and parent.thread_id == "gmail:t1"
    assert [m.message_id for m in store.thread("maya", "gmail:t1")] == ["<q@x.org>", "<a@x.org>"]

    store.set_server("maya", gmail.settings(ADDRESS, fake.url))
    secret = Secret(json.dumps(gmail.token_json(creds_for(fake))))
    headers = replies.reply_headers(parent, [ADDRESS])
    reply = store.save_draft("maya", "", "Yes, see you then.", [], subject=headers.subject,
                             to_addrs=headers.to, in_reply_to=headers.in_reply_to,
                             refs=headers.references)  # fmt: skip
    fresh = store.save_draft("maya", "say hi", "Hi Tom", [], to_addrs="tom@example.org")
    first = drafts.save(store, "maya", reply, secret)
    assert fake.draft_threads[first] == "t1"
    assert b"In-Reply-To: <q@x.org>" in fake.drafts[first]
    assert fake.draft_threads[drafts.save(store, "maya", fresh, secret)] is None
    assert drafts.save(store, "maya", reply, secret) == first  # updated in place, same thread
    assert fake.draft_threads[first] == "t1"


def test_expired_access_token_is_refreshed_silently(store, fake):
    fake.add(demo_messages()[0])
    gmail.sync(store, "maya", creds_for(fake, token="stale", expired=True), fake.url)
    assert fake.grants == ["refresh_token"]
    assert store.count_messages("maya") == 1


def test_revoked_refresh_token_is_a_clear_auth_error(store, fake):
    with pytest.raises(AuthError, match="refresh"):
        gmail.sync(
            store, "maya", creds_for(fake, token="stale", refresh="revoked", expired=True), fake.url
        )


def test_drafts_create_then_update(fake):
    first = b"From: maya@okafor.example\r\nSubject: Plants\r\n\r\nv1\r\n"
    draft_id = gmail.save_draft(creds_for(fake), first, root_url=fake.url)
    assert (
        gmail.save_draft(creds_for(fake), first.replace(b"v1", b"v2"), draft_id, fake.url)
        == draft_id
    )
    assert list(fake.drafts) == [draft_id]
    parsed = email.message_from_bytes(fake.drafts[draft_id], policy=email.policy.default)
    assert parsed["Subject"] == "Plants" and parsed.get_content().strip() == "v2"


def test_installed_app_oauth_flow_with_pkce_end_to_end(fake, monkeypatch):
    import threading
    import urllib.request
    import webbrowser

    from sync import oauth

    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the stand-in speaks plain HTTP
    visited = []

    class Consent(webbrowser.BaseBrowser):
        """The user's browser: opens the consent page, which redirects back at once."""

        def open(self, url, new=0, autoraise=True):
            visited.append(url)
            threading.Thread(target=lambda: urllib.request.urlopen(url, timeout=10).read()).start()
            return True

    webbrowser.register("panza-test", None, Consent("panza-test"))
    config = {"installed": {
        "client_id": "cid", "client_secret": "csecret", "auth_uri": f"{fake.url}/auth",
        "token_uri": f"{fake.url}/token", "redirect_uris": ["http://localhost"],
    }}  # fmt: skip
    creds = oauth.authorize_installed_app(config, browser="panza-test", timeout=20)
    assert "code_challenge_method=S256" in visited[0]
    assert fake.grants == ["authorization_code"]  # and the verifier matched the challenge
    assert creds.refresh_token in fake.refresh_tokens
    stored = gmail.token_json(creds)
    again = gmail.credentials(stored)
    assert (again.refresh_token, again.token_uri) == (creds.refresh_token, f"{fake.url}/token")


@pytest.mark.slow
def test_gmail_account_from_the_cli_consent_sync_and_draft(fake, home, tmp_path):
    import json
    import os
    import subprocess
    import sys

    from panza_core import secrets
    from sync import drafts

    require("curl")
    for raw in demo_messages()[:12]:
        fake.add(raw)
    client = tmp_path / "client_secret.json"
    client.write_text(json.dumps({"installed": {
        "client_id": "cid", "client_secret": "csecret", "auth_uri": f"{fake.url}/auth",
        "token_uri": f"{fake.url}/token", "redirect_uris": ["http://localhost"],
    }}))  # fmt: skip
    env = {
        **os.environ, "OAUTHLIB_INSECURE_TRANSPORT": "1",
        # the "browser" follows the consent redirect back to Panza's loopback listener
        "BROWSER": "sh -c 'curl -sL -o /dev/null \"$0\" &' %s",
    }  # fmt: skip
    add = subprocess.run(
        [sys.executable, "-m", "panza_tui", "account", "add", "g", "--gmail",
         "--client-secrets", str(client), "--api-root", fake.url],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert add.returncode == 0, add.stderr
    assert "Gmail maya@okafor.example" in add.stderr
    sync = subprocess.run([sys.executable, "-m", "panza_tui", "sync", "--account", "g"],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert sync.returncode == 0, sync.stderr
    with Store() as store:
        assert store.count_messages("g") == sum(1 for m in store.messages("g"))
        assert store.count_messages("g") >= 10
        draft_id = store.save_draft("g", "x", "Hi Tom,\n\nThe drill?\n", [], subject="Drill")
        drafts.save(store, "g", draft_id, secrets.get_secret("g:gmail"))
    (saved,) = fake.drafts.values()
    assert b"Subject: Drill" in saved and b"From: maya@okafor.example" in saved


@pytest.fixture()
def no_backoff(monkeypatch):
    """googleapiclient's retry sleeps, recorded instead of slept."""
    import googleapiclient.http

    slept: list[float] = []
    monkeypatch.setattr(googleapiclient.http.time, "sleep", slept.append)
    return slept


def test_transient_server_errors_are_retried_with_backoff(store, fake, no_backoff):
    fake.add(demo_messages()[0])
    fake.faults += [("profile", 503), ("messages", 429), ("messages/", 500)]
    gmail.sync(store, "maya", creds_for(fake), fake.url)
    assert store.count_messages("maya") == 1 and not fake.faults
    assert len(no_backoff) == 3  # one backoff wait per fault


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        (("history", 500), SyncError, "busy or unavailable"),
        (("history", 400), SyncError, "refused the request (400"),
        (("history", 403), AuthError, "refused the request (403"),
        (("history", "html"), SyncError, "not JSON"),
    ],
)
def test_every_gmail_failure_is_one_clear_error(store, fake, no_backoff, fault, error, words):
    fake.add(demo_messages()[0])
    gmail.sync(store, "maya", creds_for(fake), fake.url)
    fake.add(demo_messages()[1])
    fake.faults += [fault] * (gmail.RETRIES + 1)
    with pytest.raises(error, match=words.replace("(", r"\(")):
        gmail.sync(store, "maya", creds_for(fake), fake.url)
    assert store.count_messages("maya") == 1  # what was synced is kept
    fake.faults.clear()
    gmail.sync(store, "maya", creds_for(fake), fake.url)
    assert store.count_messages("maya") == 2


def test_a_draft_sent_or_deleted_in_gmail_is_created_again(fake):
    first = b"From: maya@okafor.example\r\nSubject: Plants\r\n\r\nv1\r\n"
    draft_id = gmail.save_draft(creds_for(fake), first, root_url=fake.url)
    del fake.drafts[draft_id]  # the user sent it from Gmail's web page
    again = gmail.save_draft(creds_for(fake), first.replace(b"v1", b"v2"), draft_id, fake.url)
    assert again != draft_id and list(fake.drafts) == [again]


def test_a_damaged_stored_token_is_an_auth_error():
    with pytest.raises(AuthError, match="not JSON"):
        gmail.GmailBackend().test_login({"root_url": ""}, Secret("{not json"))


@pytest.mark.parametrize(
    "root",
    [
        "http://gmail.example.com",
        "http://127.0.0.1.evil.example:8080",
        "http://localhost@evil.example",
        "ftp://127.0.0.1",
    ],  # fmt: skip
)
def test_an_api_root_that_is_not_https_is_refused_before_any_request(fake, root, workspace):
    """Every Gmail request carries the access token: only https, or http to this machine
    (the test stand-in), is accepted, before the browser opens for consent (issue 30)."""
    from sync import accounts

    with pytest.raises(SyncError, match="not https"):
        gmail.service(creds_for(fake), root)
    with pytest.raises(SyncError, match="not https"):
        gmail.settings(ADDRESS, root)
    with pytest.raises(SyncError, match="not https"):  # not AccountError for the missing
        accounts.add_gmail(workspace, "g", Path("/nonexistent/client.json"), root)  # file
    for allowed in (fake.url, "https://gmail.googleapis.com/"):
        assert gmail.settings(ADDRESS, allowed)["root_url"] == allowed
