"""Sent and received mail from the Gmail API (``google-api-python-client``), incrementally;
drafts back, in their thread.

The client is built from the library's static discovery document (no discovery request at
run time); ``root_url`` points it at another endpoint (a test server). Two labels are synced
in turn, SENT (the user's own mail) and INBOX (received mail). The first sync of a label
lists ``q="in:sent"`` (``in:inbox``) page by page and fetches each message with
``format=raw``; later ones ask ``history.list`` for what was added to or deleted from the
label since the stored historyId. A 404 means that historyId has expired (Gmail keeps about
a week), so the label is synced from scratch. The historyId is stored only after every
message up to it is in the store. Each message keeps Gmail's threadId as its thread, and a
reply's draft is created in its parent's thread.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from panza_core.errors import AuthError, SyncError
from panza_core.secrets import Secret
from panza_core.store import Store
from sync import extract
from sync.backend import Progress, Synced, SyncReport, require_tls_url


@dataclass(frozen=True)
class Label:
    """A Gmail label synced as a folder: its store folder, search query, and whether its
    mail is received (kept as such) or the user's own."""

    folder: str
    query: str
    label_id: str
    received: bool


SENT = Label("gmail:SENT", "in:sent", "SENT", received=False)
INBOX = Label("gmail:INBOX", "in:inbox", "INBOX", received=True)
FOLDER = SENT.folder
SCOPES = [
    "https://www.googleapis.com/auth/gmail.readonly",
    "https://www.googleapis.com/auth/gmail.compose",
]
TOKEN_URI = "https://oauth2.googleapis.com/token"


def credentials(token: dict[str, Any]) -> Any:
    """OAuth2 credentials from the stored token JSON (``token``, ``refresh_token``,
    ``token_uri``, ``client_id``, ``client_secret``, optional ``expiry`` in ISO 8601 UTC);
    the client refreshes the access token silently when it has expired. Raises
    ``SyncError`` for a ``token_uri`` that is not https (http to loopback is allowed)."""
    from datetime import datetime

    from google.oauth2.credentials import Credentials

    expiry = token.get("expiry")
    return Credentials(
        token=token.get("token"),
        refresh_token=token.get("refresh_token"),
        token_uri=require_tls_url(token.get("token_uri") or TOKEN_URI, "a Google refresh token"),
        client_id=token.get("client_id"),
        client_secret=token.get("client_secret"),
        scopes=token.get("scopes") or SCOPES,
        # google-auth compares naive UTC datetimes
        expiry=datetime.fromisoformat(expiry.rstrip("Z")).replace(tzinfo=None) if expiry else None,
    )


def token_json(creds: Any) -> dict[str, Any]:
    """What to store for ``creds`` (in the keyring): the inverse of ``credentials``."""
    return {
        "token": creds.token,
        "refresh_token": creds.refresh_token,
        "token_uri": creds.token_uri,
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
        "scopes": list(creds.scopes or SCOPES),
        "expiry": creds.expiry.isoformat() + "Z" if creds.expiry else None,
    }


def service(creds: Any, root_url: str = "", timeout: float = 30.0) -> Any:
    """A Gmail v1 client from the static discovery document, optionally on ``root_url``
    (https, or http to loopback only: ``SyncError`` otherwise, since every request carries
    the access token); every HTTP call times out after ``timeout`` seconds."""
    import google_auth_httplib2
    import httplib2
    from googleapiclient import discovery_cache
    from googleapiclient.discovery import build_from_document

    document = json.loads(discovery_cache.get_static_doc("gmail", "v1"))
    if root_url:
        root = require_tls_url(root_url, "Gmail requests with your access token").rstrip("/") + "/"
        document["rootUrl"] = document["mtlsRootUrl"] = root
        document["baseUrl"] = root + document["servicePath"]
    http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(timeout=timeout))
    return build_from_document(document, http=http)


RETRIES = 4  # after the first try; googleapiclient backs off 0-2, 0-4, 0-8, 0-16 s between


class NotFound(SyncError):
    """Gmail answered 404: the message, draft or historyId no longer exists."""


def _call(request: Any) -> Any:
    """Execute a request, retrying 429 and 5xx answers with exponential backoff
    (googleapiclient's ``num_retries``), and turning every failure into a Panza error:
    ``AuthError`` (401, 403 other than rate limits, a refused refresh), ``NotFound`` (404),
    ``SyncError`` (anything else, the network, an answer that is not JSON)."""
    import httplib2
    from google.auth.exceptions import RefreshError, TransportError
    from googleapiclient.errors import HttpError

    try:
        answer = request.execute(num_retries=RETRIES)
    except RefreshError as exc:
        raise AuthError(
            f"Google refused to refresh the access token ({exc}); run 'panza account add "
            "--gmail' again"
        ) from exc
    except HttpError as exc:
        status = int(exc.resp.status)
        reason = str(exc.reason or "")
        if status == 404:
            raise NotFound(f"Gmail has no such item any more ({reason})") from exc
        if status == 429 or status >= 500 or "rate limit" in reason.lower():
            raise SyncError(
                f"Gmail is busy or unavailable ({status}: {reason}) after {RETRIES + 1} tries; "
                "what was synced is kept: sync again later"
            ) from exc
        if status in (401, 403):
            raise AuthError(
                f"Gmail refused the request ({status}: {reason}); run 'panza account add "
                "--gmail' again if the access was revoked"
            ) from exc
        raise SyncError(f"Gmail refused the request ({status}: {reason})") from exc
    except (OSError, httplib2.HttpLib2Error, TransportError) as exc:
        raise SyncError(
            f"cannot reach the Gmail API ({exc}); what was synced is kept: sync again "
            "when the network is back"
        ) from exc
    except ValueError as exc:  # a 200 "application/json" body that does not parse
        raise SyncError(_NOT_JSON.format(detail=exc)) from exc
    if not isinstance(answer, dict):  # an HTML page: a captive portal or a proxy's
        raise SyncError(_NOT_JSON.format(detail=str(answer)[:80]))
    return answer


_NOT_JSON = (
    "the Gmail API answered with something that is not JSON ({detail}); a proxy or captive "
    "portal may be in the way"
)


def _token(secret: Secret) -> Any:
    """Credentials from the stored token JSON; ``AuthError`` if it is not JSON."""
    try:
        token = json.loads(secret.reveal())
    except ValueError:
        raise AuthError(
            "the stored Gmail token is damaged (not JSON); run 'panza account add --gmail' again"
        ) from None
    return credentials(token)


def _gmail_ids(store: Store, account: str, label: Label) -> dict[str, int]:
    """Gmail message id -> store id, for the messages synced from ``label``."""
    return {
        m.source.removeprefix("gmail/"): m.id
        for m in store.messages(account, received=label.received)
        if m.folder == label.folder and m.id is not None
    }


def sync(
    store: Store, account: str, creds: Any, root_url: str = "", min_words: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> SyncReport:  # fmt: skip
    """Bring the account's Gmail sent mail, then its inbox, up to date; one report for
    both. Raises ``AuthError``/``SyncError``."""
    users = service(creds, root_url).users()
    report = sync_label(store, account, users, SENT, min_words, progress)
    report.merge(sync_label(store, account, users, INBOX, min_words, progress))
    return report


def sync_label(
    store: Store, account: str, users: Any, label: Label, min_words: int = 10,
    progress: Callable[[int, int], None] | None = None,
) -> SyncReport:  # fmt: skip
    """Bring one label of the account up to date (see the module docstring)."""
    report = SyncReport(folder=label.folder)
    state = store.sync_state(account, label.folder)
    known = _gmail_ids(store, account, label)
    added: list[str] = []
    history_id: str | None = None
    if state is not None and state.history_id:
        try:
            added, deleted, history_id = _history(users, state.history_id, label.label_id)
        except NotFound:
            report.resynced, state = True, None
        else:
            gone = [known[i] for i in deleted if i in known]
            store.mark_deleted(gone)
            report.deleted_ids += gone
    if state is None or not state.history_id:
        # Full sync: list everything; what is stored but no longer listed was deleted.
        history_id = str(_call(users.getProfile(userId="me"))["historyId"])
        added = _list(users, label.query)
        listed = set(added)
        gone = [row for gmail_id, row in known.items() if gmail_id not in listed]
        store.mark_deleted(gone)
        report.deleted_ids += gone
    new = [i for i in dict.fromkeys(added) if i not in known]
    addresses = store.addresses(account) or None
    for done, gmail_id in enumerate(new, start=1):
        try:
            item = _call(users.messages().get(userId="me", id=gmail_id, format="raw"))
        except NotFound:  # deleted between listing and fetching
            continue
        raw = base64.urlsafe_b64decode(item["raw"] + "=" * (-len(item["raw"]) % 4))
        result = extract.extract(
            raw, addresses, min_words, source=f"gmail/{gmail_id}", folder=label.folder,
            keep_received=label.received,
        )  # fmt: skip
        if isinstance(result, extract.Message) and item.get("threadId"):
            result.thread_id = f"gmail:{item['threadId']}"
        report.record(store, account, f"gmail/{gmail_id}", result)
        if progress:
            progress(done, len(new))
    store.set_sync_state(account, label.folder, history_id=history_id)
    return report


def _list(users: Any, query: str) -> list[str]:
    ids: list[str] = []
    token = None
    while True:
        page = _call(users.messages().list(userId="me", q=query, pageToken=token, maxResults=500))
        ids += [m["id"] for m in page.get("messages", [])]
        token = page.get("nextPageToken")
        if not token:
            return ids


def _history(users: Any, start: str, label_id: str) -> tuple[list[str], list[str], str]:
    """(ids added to the label, ids deleted, newest historyId) since ``start``; 404 if
    expired."""
    added: list[str] = []
    deleted: list[str] = []
    token = None
    newest = start
    while True:
        page = _call(users.history().list(
            userId="me", startHistoryId=start, labelId=label_id, pageToken=token,
            historyTypes=["messageAdded", "messageDeleted"],
        ))  # fmt: skip
        for record in page.get("history", []):
            added += [a["message"]["id"] for a in record.get("messagesAdded", [])
                      if label_id in a["message"].get("labelIds", [label_id])]  # fmt: skip
            deleted += [d["message"]["id"] for d in record.get("messagesDeleted", [])]
        newest = str(page.get("historyId", newest))
        token = page.get("nextPageToken")
        if not token:
            return [i for i in added if i not in set(deleted)], deleted, newest


def save_draft(
    creds: Any, raw: bytes, draft_id: str | None = None, root_url: str = "",
    thread_id: str | None = None,
) -> str:  # fmt: skip
    """users.drafts.create (or .update of ``draft_id``) with the raw message, in Gmail thread
    ``thread_id`` if given (Gmail also needs the matching In-Reply-To/References and
    Subject to keep it there); returns the draft id. A ``draft_id`` Gmail no longer has (the
    user sent or deleted that draft elsewhere) gets a new draft instead."""
    users = service(creds, root_url).users()
    message: dict[str, Any] = {"raw": base64.urlsafe_b64encode(raw).decode()}
    if thread_id:
        message["threadId"] = thread_id
    body = {"message": message}
    if draft_id:
        try:
            return str(_call(users.drafts().update(userId="me", id=draft_id, body=body))["id"])
        except NotFound:
            pass
    return str(_call(users.drafts().create(userId="me", body=body))["id"])


def settings(email: str, root_url: str = "") -> dict[str, Any]:
    """The stored server settings of a Gmail account (``root_url``: another endpoint, https
    or loopback http; ``SyncError`` otherwise)."""
    if root_url:
        require_tls_url(root_url, "Gmail requests with your access token")
    return {"kind": GmailBackend.kind, "root_url": root_url, "email": email}


def profile_email(creds: Any, root_url: str = "") -> str:
    """The address of the account ``creds`` authorize (users.getProfile)."""
    return str(_call(service(creds, root_url).users().getProfile(userId="me"))["emailAddress"])


class GmailBackend:
    """``MailBackend`` for the Gmail API; the secret is the token JSON (``token_json``)."""

    kind = "gmail"

    def describe(self, server: dict[str, Any]) -> str:
        return f"Gmail {server.get('email', '')}"

    def test_login(self, server: dict[str, Any], secret: Secret) -> str:
        creds = _token(secret)
        return f"Gmail {profile_email(creds, server.get('root_url', ''))}"

    def sync(
        self, store: Store, account: str, server: dict[str, Any], secret: Secret, min_words: int,
        progress: Progress | None = None,
    ) -> Synced:  # fmt: skip
        creds = _token(secret)
        report = sync(store, account, creds, server.get("root_url", ""), min_words, progress)
        # the access token may have been refreshed on the way
        return Synced(report, Secret(json.dumps(token_json(creds))))

    def save_draft(
        self, server: dict[str, Any], secret: Secret, raw: bytes, previous: str | None,
        store: Store, account: str,
    ) -> str:  # fmt: skip
        creds = _token(secret)
        thread = reply_thread(store, account, raw)
        return save_draft(creds, raw, previous or None, server.get("root_url", ""), thread)


def reply_thread(store: Store, account: str, raw: bytes) -> str | None:
    """The Gmail threadId of the email a draft replies to (its In-Reply-To), if that email
    was synced from Gmail; None for a new email."""
    headers = email.message_from_bytes(raw, policy=email.policy.compat32)
    parent_id = str(headers.get("In-Reply-To") or "").strip()
    parent = store.by_message_id(account, parent_id) if parent_id else None
    if parent is None or not (parent.thread_id or "").startswith("gmail:"):
        return None
    return (parent.thread_id or "").removeprefix("gmail:")
