"""The OAuth 2.0 installed-app flow (RFC 8252) for Gmail, with PKCE (RFC 7636).

``google-auth-oauthlib`` opens the consent page in the user's browser and receives the
authorization code on a loopback redirect (``http://localhost:<free port>/``); the code and
the PKCE verifier are exchanged for an access token and a refresh token. On a machine
without a browser the URL is printed to open elsewhere.
"""

from __future__ import annotations

from typing import Any

from panza_core.errors import AuthError
from sync.gmail import SCOPES


def authorize_installed_app(
    client_config: dict[str, Any], scopes: list[str] = SCOPES, browser: str | None = None,
    timeout: int = 300,
) -> Any:  # fmt: skip
    """Run the consent flow; returns ``google.oauth2.credentials.Credentials``.

    ``client_config`` is the client secrets JSON of an installed ("Desktop") app. Raises
    ``AuthError`` if the user does not consent within ``timeout`` seconds or the token
    exchange fails.
    """
    from google_auth_oauthlib.flow import InstalledAppFlow

    flow = InstalledAppFlow.from_client_config(
        client_config, scopes, autogenerate_code_verifier=True
    )
    try:
        return flow.run_local_server(
            host="localhost", port=0, open_browser=True, browser=browser,
            timeout_seconds=timeout,
            authorization_prompt_message="Open this page to let Panza read your sent mail: {url}",
            success_message="Panza is authorized. You can close this window.",
        )  # fmt: skip
    except Exception as exc:  # oauthlib raises many types; all mean "not authorized"
        raise AuthError(f"Google authorization did not complete: {exc}") from exc


class Consent:
    """The same consent flow in steps, for the app: ``url`` to open (in a browser here or
    on another machine); ``wait`` catches the loopback redirect in a worker thread; or the
    user pastes the address the browser was sent to (``finish`` takes either), as mutt's
    ``mutt_oauth2.py`` allows on a machine without a browser.

    Raises ``AuthError`` from ``finish`` if the code is refused or the pasted address is not
    a redirect of this consent (its state does not match).
    """

    def __init__(self, client_config: dict[str, Any], scopes: list[str] = SCOPES) -> None:
        import wsgiref.simple_server

        from google_auth_oauthlib.flow import (
            InstalledAppFlow,
            _RedirectWSGIApp,
            _WSGIRequestHandler,
        )

        self.flow = InstalledAppFlow.from_client_config(
            client_config, scopes, autogenerate_code_verifier=True
        )
        self._app = _RedirectWSGIApp("Panza is authorized. You can close this window.")
        self._server = wsgiref.simple_server.make_server(
            "localhost", 0, self._app, handler_class=_WSGIRequestHandler
        )
        self.flow.redirect_uri = f"http://localhost:{self._server.server_port}/"
        self.url, _ = self.flow.authorization_url(prompt="consent", access_type="offline")

    def wait(self, timeout: float, stop: Any = None) -> str | None:
        """The redirect address once the browser comes back to this machine, or None after
        ``timeout`` seconds or once ``stop`` (a ``threading.Event``) is set."""
        import time

        deadline = time.monotonic() + timeout
        self._server.timeout = 0.5
        while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            self._server.handle_request()
            if self._app.last_request_uri:
                return str(self._app.last_request_uri)
        return None

    def finish(self, redirected: str) -> Any:
        """Exchange the code in ``redirected`` (with the PKCE verifier) for credentials."""
        # oauthlib insists on https; the loopback redirect is http by design (RFC 8252 7.3)
        response = redirected.strip().replace("http://", "https://", 1)
        try:
            self.flow.fetch_token(authorization_response=response)
        except Exception as exc:  # oauthlib raises many types; all mean "not authorized"
            raise AuthError(f"Google authorization did not complete: {exc}") from exc
        finally:
            self.close()
        return self.flow.credentials

    def close(self) -> None:
        """Stop listening for the redirect."""
        self._server.server_close()
