"""The OAuth 2.0 installed-app flow (RFC 8252) for Gmail, with PKCE (RFC 7636).

``google-auth-oauthlib`` opens the consent page in the user's browser and receives the
authorization code on a loopback redirect (``http://localhost:<free port>/``); the code and
the PKCE verifier are exchanged for an access token and a refresh token. On a machine
without a browser the URL is printed to open elsewhere.
"""

from __future__ import annotations

from typing import Any

from panza_tui.core.errors import AuthError
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
