"""Reaching an IMAP server: its settings (``ImapServer``), the TLS connection and login
(password, XOAUTH2, OAUTHBEARER; an OAuth2 access token refreshed per connection), and one
line for every error of imapclient, the socket or TLS."""

from __future__ import annotations

import contextlib
import json
import ssl
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from panza_core.errors import AccountError, AuthError, SyncError
from panza_core.secrets import Secret
from sync.backend import LOOPBACK, require_tls_url

KIND = "imap"  # the ``kind`` of its server settings in the store
SECURITY = ("ssl", "starttls", "plain")  # implicit TLS (993), STARTTLS upgrade, none


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
        return {"kind": KIND, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImapServer:
        return cls(**{k: v for k, v in data.items() if k != "kind"})


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


def logout(client: Any) -> None:
    """Log out of ``client``, ignoring a connection that is already gone."""
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        pass
