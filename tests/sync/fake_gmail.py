"""A local stand-in for the Gmail API and Google's OAuth endpoints, for the real client
libraries to talk to: profile, messages.list/get, history.list, drafts.create/update, an
authorization endpoint that consents at once, and a token endpoint that checks PKCE."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse


class FakeGmail:
    """State of one mailbox plus the OAuth server; ``url`` is its root."""

    page_size = 7

    def __init__(self) -> None:
        self.messages: dict[str, dict] = {}  # id -> {"raw": bytes, "labels": [...]}
        self.history: list[dict] = []  # {"id", "added": [ids], "deleted": [ids]}
        self.history_id = 1000
        self.oldest_history = 0  # a startHistoryId below this is "expired" (404)
        self.drafts: dict[str, bytes] = {}
        self.draft_count = 0
        self.draft_threads: dict[str, str | None] = {}  # draft id -> the threadId it was put in
        self.access_tokens = {"valid-token"}
        self.refresh_tokens = {"refresh-1"}
        self.codes: dict[str, tuple[str, str]] = {}  # code -> (PKCE challenge, scope)
        self.grants: list[str] = []
        self.requests: list[str] = []
        # (path fragment, status or "html"): the next request whose path has the fragment
        # gets that answer instead, once per entry (transient errors, a captive portal)
        self.faults: list[tuple[str, int | str]] = []
        self._next = 0x18C0000000000000
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, raw: bytes, labels=("SENT",), thread: str | None = None) -> str:
        """A message arrives (or is sent), in ``thread`` (default: a new one); returns its
        Gmail id."""
        self._next += 1
        gmail_id = f"{self._next:x}"
        self.messages[gmail_id] = {"raw": raw, "labels": list(labels), "thread": thread or gmail_id}
        self.history_id += 1
        self.history.append({"id": self.history_id, "added": [gmail_id], "deleted": []})
        return gmail_id

    def delete(self, gmail_id: str) -> None:
        del self.messages[gmail_id]
        self.history_id += 1
        self.history.append({"id": self.history_id, "added": [], "deleted": [gmail_id]})


def _handler(gmail: FakeGmail):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _send(self, status: int, body: dict | None = None, headers: dict | None = None):
            data = json.dumps(body or {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _faulted(self, path: str) -> bool:
            for fault in gmail.faults:
                fragment, answer = fault
                if fragment in path:
                    gmail.faults.remove(fault)
                    if answer == "html":
                        data = b"<html><body>Sign in to the hotel Wi-Fi</body></html>"
                        self.send_response(200)
                        self.send_header("Content-Type", "text/html")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                    else:
                        self._send(int(answer), {"error": {"code": answer, "message": "fault"}})
                    return True
            return False

        def _authorized(self) -> bool:
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in gmail.access_tokens:
                self._send(401, {"error": {"code": 401, "message": "Invalid Credentials"}})
                return False
            return True

        def do_GET(self):  # noqa: N802
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            gmail.requests.append(f"GET {url.path}")
            if self._faulted(url.path):
                return
            if url.path == "/auth":
                code = secrets.token_urlsafe(8)
                gmail.codes[code] = (query["code_challenge"], query.get("scope", ""))
                target = (
                    f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
                )
                self.send_response(302)
                self.send_header("Location", target)
                self.end_headers()
                return
            if not self._authorized():
                return
            base = "/gmail/v1/users/me/"
            path = url.path.removeprefix(base)
            if path == "profile":
                self._send(
                    200, {"emailAddress": "maya@okafor.example", "historyId": str(gmail.history_id)}
                )
            elif path == "messages":
                label = {"in:sent": "SENT", "in:inbox": "INBOX"}[query["q"]]
                sent = [i for i, m in gmail.messages.items() if label in m["labels"]]
                start = int(query.get("pageToken", 0))
                page = sent[start : start + gmail.page_size]
                body = {
                    "messages": [{"id": i, "threadId": gmail.messages[i]["thread"]} for i in page]
                }
                if start + gmail.page_size < len(sent):
                    body["nextPageToken"] = str(start + gmail.page_size)
                self._send(200, body)
            elif path.startswith("messages/"):
                item = gmail.messages.get(path.removeprefix("messages/"))
                if item is None:
                    self._send(404, {"error": {"code": 404, "message": "Not Found"}})
                    return
                raw = base64.urlsafe_b64encode(item["raw"]).decode().rstrip("=")
                labels, thread = item["labels"], item["thread"]
                self._send(200, {"id": path, "labelIds": labels, "raw": raw, "threadId": thread})
            elif path == "history":
                start = int(query["startHistoryId"])
                if start < gmail.oldest_history:
                    self._send(
                        404, {"error": {"code": 404, "message": "Requested entity was not found."}}
                    )
                    return
                records = []
                for h in gmail.history:
                    if h["id"] <= start:
                        continue
                    record = {"id": str(h["id"])}
                    if h["added"]:
                        record["messagesAdded"] = [
                            {
                                "message": {
                                    "id": i,
                                    "labelIds": gmail.messages.get(i, {}).get("labels", []),
                                }
                            }
                            for i in h["added"]
                        ]
                    if h["deleted"]:
                        record["messagesDeleted"] = [{"message": {"id": i}} for i in h["deleted"]]
                    records.append(record)
                self._send(200, {"history": records, "historyId": str(gmail.history_id)})
            else:
                self._send(404, {"error": {"code": 404, "message": path}})

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def do_POST(self):  # noqa: N802
            url = urlparse(self.path)
            gmail.requests.append(f"POST {url.path}")
            if self._faulted(url.path):
                return
            if url.path == "/introspect":  # RFC 7662, as Dovecot's oauth2 passdb asks it
                form = {k: v[0] for k, v in parse_qs(self._body().decode()).items()}
                active = form.get("token") in gmail.access_tokens
                self._send(
                    200, {"active": "true" if active else "false", "email": "maya@okafor.example"}
                )
                return
            if url.path == "/token":
                form = {k: v[0] for k, v in parse_qs(self._body().decode()).items()}
                gmail.grants.append(form["grant_type"])
                if form["grant_type"] == "authorization_code":
                    challenge, scope = gmail.codes.pop(form.get("code", ""), (None, ""))
                    form["scope"] = scope
                    verifier = form.get("code_verifier", "")
                    expected = (
                        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                        .decode()
                        .rstrip("=")
                    )
                    if challenge is None or challenge != expected:
                        self._send(400, {"error": "invalid_grant"})
                        return
                    refresh = secrets.token_urlsafe(8)
                    gmail.refresh_tokens.add(refresh)
                elif form["grant_type"] == "refresh_token":
                    if form.get("refresh_token") not in gmail.refresh_tokens:
                        self._send(
                            400,
                            {
                                "error": "invalid_grant",
                                "error_description": "Token has been expired or revoked.",
                            },
                        )
                        return
                    refresh = form["refresh_token"]
                else:
                    self._send(400, {"error": "unsupported_grant_type"})
                    return
                access = secrets.token_urlsafe(8)
                gmail.access_tokens.add(access)
                self._send(
                    200,
                    {
                        "access_token": access,
                        "expires_in": 3600,
                        "token_type": "Bearer",
                        "refresh_token": refresh,
                        "scope": " ".join(form.get("scope", "").split()),
                    },
                )
                return
            if not self._authorized():
                return
            if url.path == "/gmail/v1/users/me/drafts":
                body = json.loads(self._body())
                gmail.draft_count += 1
                draft_id = f"r{gmail.draft_count}"
                gmail.drafts[draft_id] = base64.urlsafe_b64decode(body["message"]["raw"] + "==")
                gmail.draft_threads[draft_id] = body["message"].get("threadId")
                self._send(200, {"id": draft_id, "message": {"id": draft_id}})
            else:
                self._send(404, {})

        def do_PUT(self):  # noqa: N802
            url = urlparse(self.path)
            gmail.requests.append(f"PUT {url.path}")
            if self._faulted(url.path):
                return
            if not self._authorized():
                return
            draft_id = url.path.rsplit("/", 1)[-1]
            if draft_id not in gmail.drafts:
                self._send(404, {})
                return
            body = json.loads(self._body())
            gmail.drafts[draft_id] = base64.urlsafe_b64decode(body["message"]["raw"] + "==")
            gmail.draft_threads[draft_id] = body["message"].get("threadId")
            self._send(200, {"id": draft_id, "message": {"id": draft_id}})

    return Handler
