"""Sent and received mail from an IMAP server with ``imapclient``, incrementally; drafts
back to it.

The sent folder is the user's own mail (learned from); INBOX is their received mail (read,
and answered from the app). Mail in INBOX from the user's own addresses (a mailing list's
copy of their post) counts as their own, and is stored once with its Sent copy.

Folders are found by SPECIAL-USE (RFC 6154: ``\\Sent``, ``\\Drafts``), then by common names.
The first sync fetches every message in batches with ``BODY.PEEK[]`` (never sets ``\\Seen``);
later ones fetch only UIDs above the last one seen, as long as the folder's UIDVALIDITY is
unchanged (RFC 3501 2.3.1.1; a change means the UIDs were reassigned, so the folder is
synced again from scratch). With CONDSTORE (RFC 7162) an unchanged HIGHESTMODSEQ proves
nothing was deleted, so the deletion check is skipped. Each batch is committed with the
last UID it reached, so an interrupted sync resumes there; messages re-fetched after an
interruption are recognised by Message-ID or content hash and not stored twice. Mail
deleted on the server stays in the store as a tombstone (``Store.mark_deleted``).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import queue
import re
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from typing import Any

from panza_core import threads
from panza_core.errors import AccountError, AuthError, SyncError
from panza_core.secrets import Secret
from panza_core.store import Store
from sync import extract
from sync.backend import LOOPBACK, Progress, Synced, SyncReport, require_tls_url

SENT_NAMES = ("Sent", "Sent Items", "Sent Messages", "[Gmail]/Sent Mail", "INBOX.Sent", "Sent Mail")
DRAFT_NAMES = ("Drafts", "[Gmail]/Drafts", "INBOX.Drafts", "Draft")
SECURITY = ("ssl", "starttls", "plain")  # implicit TLS (993), STARTTLS upgrade, none
_APPENDUID = re.compile(rb"APPENDUID \d+ (\d+)")


@dataclass
class ImapServer:
    """How to reach an account's IMAP server; stored as JSON in the store (no secrets).

    ``security``: ``ssl`` (IMAPS, port 993), ``starttls`` or ``plain`` (port 143; only to
    loopback unless ``insecure``). ``auth``: ``password``, ``xoauth2`` or ``oauthbearer``
    (the secret is then an OAuth2 access token, or, with ``oauth_token_uri``, a JSON object
    with ``refresh_token`` and ``client_secret`` from which a fresh access token is obtained
    at each connection, as aerc and neomutt do). ``timeout`` in seconds, for every call.
    """

    host: str
    user: str
    port: int = 0
    security: str = "ssl"
    auth: str = "password"
    sent: str = ""
    drafts: str = ""
    inbox: str = "INBOX"  # received mail; "" syncs the sent folder only
    ca_file: str = ""
    insecure: bool = False
    timeout: float = 30.0
    oauth_token_uri: str = ""  # with oauth: refresh the access token here (RFC 6749 6)
    oauth_client_id: str = ""

    def __post_init__(self) -> None:
        self.security = self.security.strip().lower()  # "SSL" and "STARTTLS" mean the same

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "ssl" else 143)

    def to_json(self) -> dict[str, Any]:
        return {"kind": ImapBackend.kind, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImapServer:
        return cls(**{k: v for k, v in data.items() if k != "kind"})


MAX_FETCH_BYTES = 25 * 2**20  # larger messages are fetched as header + start of body
HEADER_BYTES = 2**20  # of such a message's header
PARTIAL_BODY_BYTES = 256 * 2**10
BATCH_BYTES = 32 * 2**20  # raw bytes of one fetched batch (by RFC822.SIZE, known beforehand)
SIZE_QUERY = 1000  # UIDs whose RFC822.SIZE is asked in one FETCH


def security_mode(value: str) -> str:
    """``value`` as one of ``SECURITY``, case-insensitively; raises ``AccountError`` naming
    the choices for anything else ("tls" is ambiguous: implicit TLS or STARTTLS?)."""
    mode = value.strip().lower()
    if mode not in SECURITY:
        raise AccountError(
            f"unknown --security {value!r}: use ssl (TLS from the start, port 993), starttls "
            "(port 143, upgraded to TLS) or plain"
        )
    return mode


def connect(server: ImapServer, secret: Secret) -> Any:
    """A logged-in ``IMAPClient``. Raises ``AuthError`` if the login is refused and
    ``SyncError`` naming host and port for network and TLS failures, for a server that does
    not offer STARTTLS or refuses it (a NO or BAD answer, which anyone on the network path
    can forge: it comes before TLS), for any other error of the server or the connection,
    and (before connecting) for an unknown security mode: nothing is ever sent without the
    TLS that was asked for. ``secret`` is revealed only to the login call.
    """
    from imapclient import IMAPClient
    from imapclient.exceptions import CapabilityError, IMAPClientError, LoginError

    if server.security not in SECURITY:
        raise SyncError(
            f"unknown IMAP security {server.security!r} for {server.host}: not connecting; "
            "set ssl, starttls or plain with 'panza account add' again"
        )
    if server.security == "plain" and server.host not in LOOPBACK:
        if not server.insecure:
            raise SyncError(
                f"refusing to send a password in clear text to {server.host}: use --security "
                "ssl or starttls, or --insecure if you really mean it"
            )
        warnings.warn(
            f"IMAP to {server.host} without TLS: your password is readable on the way",
            stacklevel=2,
        )
    where = f"{server.host}:{server.effective_port}"
    context = ssl.create_default_context(cafile=server.ca_file or None)
    try:
        client = IMAPClient(
            server.host, port=server.effective_port, ssl=server.security == "ssl",
            ssl_context=context, timeout=server.timeout,
        )  # fmt: skip
    except ssl.SSLCertVerificationError as exc:
        raise SyncError(
            f"the TLS certificate of {where} is not trusted ({exc.verify_message}); "
            "pass the server's CA with --ca-file"
        ) from None
    except (OSError, ssl.SSLError, IMAPClientError) as exc:
        raise SyncError(f"cannot reach IMAP server {where}: {_text(exc)}") from None
    if server.security == "starttls":
        try:
            client.starttls(context)
        except Exception as exc:  # noqa: BLE001 - whatever happened, no login in clear text
            _shutdown(client)
            if isinstance(exc, CapabilityError):
                raise SyncError(
                    f"{where} does not offer STARTTLS, so the login would go out in clear "
                    "text: use --security ssl (port 993) if the server has it"
                ) from None
            if isinstance(exc, ssl.SSLCertVerificationError):
                raise SyncError(
                    f"the TLS certificate of {where} is not trusted ({exc.verify_message}); "
                    "pass the server's CA with --ca-file"
                ) from None
            raise SyncError(
                f"{where} refused to start TLS ({_text(exc)}), so nothing was sent: try again "
                "later, or use --security ssl (port 993); someone on the network may be "
                "blocking encryption"
            ) from None
    try:
        if server.auth == "password":
            client.login(server.user, secret.reveal())
        elif server.auth in ("xoauth2", "oauthbearer"):
            token = access_token(server, secret) if server.oauth_token_uri else secret
            login = client.oauth2_login if server.auth == "xoauth2" else client.oauthbearer_login
            login(server.user, token.reveal())
        else:
            raise SyncError(f"unknown IMAP auth method {server.auth!r}")
    except LoginError as exc:
        _shutdown(client)
        raise AuthError(
            f"{where} refused the login for {server.user}: {_text(exc)}. Check the password "
            "(or app password) and run 'panza account add' again"
        ) from None
    except SyncError:
        _shutdown(client)
        raise
    except (OSError, ssl.SSLError, IMAPClientError) as exc:
        _shutdown(client)
        raise SyncError(f"the login to {where} failed: {_text(exc)}") from None
    return client


def _shutdown(client: Any) -> None:
    try:
        client.shutdown()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        pass


@contextlib.contextmanager
def server_errors(server: ImapServer, doing: str, fix: str = "") -> Iterator[None]:
    """Turn every error of imapclient, the socket or TLS inside the block into a
    ``SyncError`` of one line: ``doing`` (e.g. "the sync") failed, the cause, ``fix``.
    The cause is not chained (``from None``): its frames hold the connection, whose locals
    a traceback printer could show."""
    from imapclient.exceptions import IMAPClientError

    try:
        yield
    except (OSError, ssl.SSLError, IMAPClientError, EOFError) as exc:  # timeouts are OSError
        raise SyncError(
            f"{doing} with {server.host} failed ({_text(exc)}){'; ' + fix if fix else ''}"
        ) from None


def access_token(server: ImapServer, secret: Secret) -> Secret:
    """A fresh OAuth2 access token from the refresh token in ``secret`` (JSON with
    ``refresh_token`` and ``client_secret``) at ``server.oauth_token_uri``.

    Raises ``AuthError`` if the token endpoint refuses, ``SyncError`` if it is unreachable.
    """
    import requests

    try:
        stored = json.loads(secret.reveal())
    except ValueError:
        raise AuthError(
            "the stored OAuth token is damaged (not JSON); run 'panza account add' again"
        ) from None
    uri = require_tls_url(server.oauth_token_uri, "an OAuth refresh token")
    try:
        response = requests.post(
            uri,
            data={
                "grant_type": "refresh_token", "refresh_token": stored["refresh_token"],
                "client_id": server.oauth_client_id,
                "client_secret": stored.get("client_secret", ""),
            },
            timeout=server.timeout,
        )  # fmt: skip
    except requests.RequestException as exc:
        raise SyncError(
            f"cannot reach the token endpoint {server.oauth_token_uri}: {exc}"
        ) from None
    try:
        answer = response.json()
    except ValueError:  # requests' JSONDecodeError: an HTML error page, a captive portal
        answer = None
    if response.status_code == 200 and not isinstance(answer, dict):
        raise SyncError(
            f"the token endpoint {server.oauth_token_uri} answered with something that is not "
            "JSON; a proxy or captive portal may be in the way"
        )
    if response.status_code != 200 or "access_token" not in answer:
        raise AuthError(
            f"{server.oauth_token_uri} refused the refresh token ({response.status_code}: "
            f"{response.text[:200]}); run 'panza account add' again"
        )
    return Secret(str(answer["access_token"]))


def _text(exc: BaseException) -> str:
    """The cause in ``exc`` as one line of text (a server's answer comes as bytes)."""
    text = exc.args[0] if exc.args else str(exc)
    text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return " ".join((text or type(exc).__name__).split())[:300]


def find_folder(client: Any, use: bytes, names: tuple[str, ...], override: str = "") -> str:
    """The folder with SPECIAL-USE flag ``use`` (e.g. ``b"\\\\Sent"``), else a common name.

    Raises ``SyncError`` listing the server's folders if none fits.
    """
    folders = client.list_folders()
    if override:
        if any(name == override for _, _, name in folders):
            return override
        raise SyncError(f"no folder {override!r} on the server")
    for flags, _, name in folders:
        if use in flags:
            return name
    lowered = {name.lower(): name for _, _, name in folders}
    for candidate in names:
        if candidate.lower() in lowered:
            return lowered[candidate.lower()]
    listing = ", ".join(name for _, _, name in folders)
    raise SyncError(f"no {use.decode()} folder found (folders: {listing}); name it with --sent")


def sync_folder(
    store: Store, account: str, client: Any, folder: str, min_words: int = 10,
    batch: int = 200, progress: Callable[[int, int], None] | None = None,
    received: bool = False,
) -> SyncReport:  # fmt: skip
    """Bring ``folder`` of ``account`` up to date; see the module docstring for how.

    ``received``: the folder holds received mail (INBOX), kept as such; otherwise mail not
    from the account's addresses is skipped as ``not_from_account``.
    """
    report = SyncReport(folder=folder)
    info = client.select_folder(folder, readonly=True)
    uidvalidity = int(info[b"UIDVALIDITY"])
    modseq = info.get(b"HIGHESTMODSEQ")
    modseq = int(modseq) if modseq is not None else None
    state = store.sync_state(account, folder)
    if state is not None and state.uidvalidity != uidvalidity:
        store.forget_folder(account, folder)
        report.resynced = True
        state = None
    last_uid = state.last_uid if state else 0

    known = store.uids(account, folder)
    unchanged = state is not None and modseq is not None and state.highestmodseq == modseq
    if known and not unchanged:
        present = set(client.search(["ALL"]))
        gone = [row for uid, row in known.items() if uid not in present]
        report.deleted_ids += gone
        store.mark_deleted(gone)

    # "N:*" always matches the last message even when its UID is below N, so filter.
    new = sorted(uid for uid in client.search(["UID", f"{last_uid + 1}:*"]) if uid > last_uid)
    addresses = store.addresses(account) or None
    done = 0
    with _extractor(len(new)) as run:
        for chunk, data in _prefetched(client, new, batch):
            jobs = [
                (data.get(uid, {}).get(b"BODY[]"), addresses, min_words, f"{folder}/{uid}",
                 folder, received)
                for uid in chunk
            ]  # fmt: skip
            results = run(jobs)
            with store.transaction():
                for uid, (raw, *_), result in zip(chunk, jobs, results, strict=True):
                    source = f"{folder}/{uid}"
                    if raw is None:
                        result = extract.Skip("unparseable", "the server returned no body")
                    elif isinstance(result, extract.Message):
                        result.uid = uid
                    report.record(store, account, source, result)
                store.set_sync_state(account, folder, uidvalidity=uidvalidity, last_uid=chunk[-1])
            done += len(chunk)
            if progress:
                progress(done, len(new))
    store.set_sync_state(
        account, folder, uidvalidity=uidvalidity, last_uid=max([last_uid, *new]),
        highestmodseq=modseq,
    )  # fmt: skip
    return report


PARALLEL_FROM = 2000  # messages; below this, starting worker processes costs more than it saves


def _extract_job(job: tuple) -> extract.Message | extract.Skip | None:
    raw, addresses, min_words, source, folder, received = job
    if raw is None:
        return None
    return extract.extract(
        raw, addresses, min_words, source=source, folder=folder, keep_received=received
    )


@contextlib.contextmanager
def _extractor(count: int) -> Iterator[Callable[[list[tuple]], list]]:
    """A function that extracts a batch of messages: in worker processes for a large sync
    (parsing is CPU-bound Python: the stdlib parser even compiles a regex per multipart
    boundary), in this process otherwise. Workers are spawned, not forked, so a sync started
    from the TUI's threads cannot inherit a held lock."""
    cores = threads.available_cores()
    if count < PARALLEL_FROM or cores < 2:
        yield lambda jobs: [_extract_job(job) for job in jobs]
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(cores, 4), mp_context=context) as pool:
        yield lambda jobs: list(pool.map(_extract_job, jobs, chunksize=32))


def _fetch(client: Any, batch: list[tuple[int, int]]) -> dict:
    """``{uid: {b"BODY[]": raw}}`` for ``batch`` (``(uid, RFC822.SIZE)`` pairs). A message
    larger than ``MAX_FETCH_BYTES`` (attachments) comes as the first ``HEADER_BYTES`` of its
    header and the first ``PARTIAL_BODY_BYTES`` of its body, where the text part is: one huge
    message cannot stall every sync or fill the memory, and its text is kept."""
    big = sorted(uid for uid, size in batch if size > MAX_FETCH_BYTES)
    small = [uid for uid, size in batch if size <= MAX_FETCH_BYTES]
    data = dict(client.fetch(small, ["BODY.PEEK[]"])) if small else {}
    if big:
        parts = [f"BODY.PEEK[HEADER]<0.{HEADER_BYTES}>", f"BODY.PEEK[TEXT]<0.{PARTIAL_BODY_BYTES}>"]
        for uid, item in client.fetch(big, parts).items():
            header = next((v for k, v in item.items() if k.startswith(b"BODY[HEADER]")), b"")
            body = next((v for k, v in item.items() if k.startswith(b"BODY[TEXT]")), b"")
            header = header or b""
            if not header.endswith(b"\r\n\r\n"):  # cut short: end the header block
                header = header.rpartition(b"\n")[0] + b"\r\n\r\n"
            data[uid] = {b"BODY[]": header + (body or b"")}
    return data


def batches(
    sizes: list[tuple[int, int]], count: int, limit: int | None = None
) -> Iterator[list[tuple[int, int]]]:
    """``(uid, size)`` pairs in order, in batches of at most ``count`` messages whose
    fetched bytes add up to at most ``limit`` (default ``BATCH_BYTES``; a message counts as
    what ``_fetch`` asks for: its size, or ``HEADER_BYTES + PARTIAL_BODY_BYTES`` above
    ``MAX_FETCH_BYTES``). A message larger than ``limit`` is a batch of its own."""
    limit = BATCH_BYTES if limit is None else limit
    batch: list[tuple[int, int]] = []
    used = 0
    for uid, size in sizes:
        cost = size if size <= MAX_FETCH_BYTES else HEADER_BYTES + PARTIAL_BODY_BYTES
        if batch and (len(batch) >= count or used + cost > limit):
            yield batch
            batch, used = [], 0
        batch.append((uid, size))
        used += cost
    if batch:
        yield batch


def _sizes(client: Any, uids: list[int]) -> Iterator[tuple[int, int]]:
    """``(uid, RFC822.SIZE)`` for ``uids`` in order, asked ``SIZE_QUERY`` UIDs at a time
    (a UID the server no longer has is left out)."""
    for start in range(0, len(uids), SIZE_QUERY):
        chunk = uids[start : start + SIZE_QUERY]
        answer = client.fetch(chunk, ["RFC822.SIZE"])
        for uid in chunk:
            if uid in answer:
                yield uid, int(answer[uid].get(b"RFC822.SIZE", 0))


def _prefetched(client: Any, uids: list[int], batch: int) -> Iterator[tuple[list[int], dict]]:
    """(UIDs, fetched data) batch by batch (``batches``: at most ``batch`` messages and
    ``BATCH_BYTES``), fetching the next batch while the caller parses this one: the server
    and the network work while we parse. At most three batches are in memory at once (one
    parsed, one waiting, one arriving): raw mail is bounded by ``3 * BATCH_BYTES`` whatever
    the folder holds. Only the fetching thread touches the connection; its errors are raised
    here."""
    chunks: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def fetch() -> None:
        try:
            for chunk in batches(list(_sizes(client, uids)), batch):
                if stop.is_set():
                    return
                chunks.put(([uid for uid, _ in chunk], _fetch(client, chunk)))
            chunks.put(None)
        except BaseException as exc:  # handed to the consumer, which raises it
            chunks.put(exc)

    worker = threading.Thread(target=fetch, daemon=True, name="imap-fetch")
    worker.start()
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # let a pending put finish, so the thread can end
            try:
                chunks.get(timeout=0.1)
            except queue.Empty:
                pass


def sync(
    store: Store, account: str, secret: Secret, min_words: int = 10, batch: int = 200,
    progress: Callable[[int, int], None] | None = None,
) -> SyncReport:  # fmt: skip
    """Sync the sent folder of ``account`` (whose server settings are in the store), then
    its INBOX; one report with the counts of both (``received`` counts INBOX mail).

    ``progress(done, total)`` runs over both folders in turn. Raises ``AuthError``/
    ``SyncError``; a connection lost mid-sync keeps every finished batch and says to run the
    sync again to continue.
    """
    server = ImapServer.from_json(store.server(account))
    client = connect(server, secret)
    again = "what was fetched is kept: run 'panza sync' again to continue"
    try:
        with server_errors(server, "the sync", again):
            folder = find_folder(client, b"\\Sent", SENT_NAMES, server.sent)
            report = sync_folder(store, account, client, folder, min_words, batch, progress)
            if server.inbox and server.inbox != folder:
                inbox = sync_folder(
                    store, account, client, server.inbox, min_words, batch, progress,
                    received=True,
                )  # fmt: skip
                report.merge(inbox)
            return report
    except BrokenProcessPool:  # a parsing worker was killed (out of memory?)
        raise SyncError(
            f"a worker process parsing mail died (out of memory, or killed); {again}"
        ) from None
    finally:
        _logout(client)


def _logout(client: Any) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        pass


def append_draft(
    store: Store, account: str, secret: Secret, raw: bytes, previous_uid: int | None = None
) -> int | None:
    """APPEND a draft (RFC 5322 bytes) to the drafts folder with ``\\Draft``, then remove its
    earlier copies so they do not pile up: ``previous_uid`` and every message in the folder
    with the draft's Message-ID (a server without UIDPLUS never told us the UID). Returns
    the new UID (from APPENDUID, RFC 4315, else found by Message-ID), or None.

    Raises ``SyncError``/``AuthError``.
    """
    server = ImapServer.from_json(store.server(account))
    message_id = str(email.message_from_bytes(raw).get("Message-ID") or "").strip()
    client = connect(server, secret)
    try:
        with server_errors(server, "saving the draft"):
            folder = find_folder(client, b"\\Drafts", DRAFT_NAMES, server.drafts)
            client.select_folder(folder)
            old = set(_with_message_id(client, message_id))
            old |= {previous_uid} if previous_uid is not None else set()
            response = client.append(folder, raw, flags=[b"\\Draft"], msg_time=None)
            match = _APPENDUID.search(response or b"")
            uid = int(match.group(1)) if match else None
            if uid is None:
                client.select_folder(folder)  # see the appended message
                found = set(_with_message_id(client, message_id)) - old
                uid = max(found) if found else None
            _remove(client, sorted(old - {uid}))
            return uid
    finally:
        _logout(client)


def _with_message_id(client: Any, message_id: str) -> list[int]:
    """UIDs in the selected folder whose Message-ID header is ``message_id``."""
    if not message_id:
        return []
    return [int(uid) for uid in client.search(["HEADER", "Message-ID", message_id])]


def _remove(client: Any, uids: list[int]) -> None:
    """Delete ``uids`` from the selected folder without purging anyone else's mail: UID
    EXPUNGE (RFC 4315) where the server has UIDPLUS; otherwise a plain EXPUNGE only when no
    other message is flagged ``\\Deleted`` (another client's pending deletion is theirs to
    purge), else the old copies stay flagged ``\\Deleted``, which mail clients hide."""
    if not uids:
        return
    client.delete_messages(uids)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
    elif set(client.search(["DELETED"])) <= set(uids):
        client.expunge()


def now_header() -> str:
    """An RFC 5322 Date header value for now, in local time."""
    return email.utils.formatdate(time.time(), localtime=True)


class ImapBackend:
    """``MailBackend`` for IMAP: password, XOAUTH2 or OAUTHBEARER logins (``ImapServer``)."""

    kind = "imap"

    def describe(self, server: dict[str, Any]) -> str:
        return f"IMAP {server.get('host', '')}"

    def test_login(self, server: dict[str, Any], secret: Secret) -> str:
        settings = ImapServer.from_json(server)
        client = connect(settings, secret)
        try:
            with server_errors(settings, "listing the folders"):
                folder = find_folder(client, b"\\Sent", SENT_NAMES, settings.sent)
        finally:
            _logout(client)
        return f"sent folder '{folder}'"

    def sync(
        self, store: Store, account: str, server: dict[str, Any], secret: Secret, min_words: int,
        progress: Progress | None = None,
    ) -> Synced:  # fmt: skip
        return Synced(sync(store, account, secret, min_words, progress=progress), secret)

    def save_draft(
        self, server: dict[str, Any], secret: Secret, raw: bytes, previous: str | None,
        store: Store, account: str,
    ) -> str:  # fmt: skip
        uid = append_draft(store, account, secret, raw, int(previous) if previous else None)
        return str(uid) if uid is not None else ""
