"""OAuth accounts added from the app (issue 12), against the local Gmail and OAuth
stand-in: the consent page's redirect caught on the loopback by a worker, and on a machine
without a browser the redirected address pasted back."""

from __future__ import annotations

import json
import threading

import pytest
import requests

from tests.helpers import until_async
from tests.system_packages import require


@pytest.fixture()
def client_file(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the stand-in's token URL is http
    path = tmp_path / "client_secret.json"
    path.write_text(json.dumps({"installed": {
        "client_id": "cid", "client_secret": "csecret", "auth_uri": f"{fake.url}/auth",
        "token_uri": f"{fake.url}/token", "redirect_uris": ["http://localhost"],
    }}))  # fmt: skip
    return path


async def _fill(app, pilot, fake, client_file):
    from textual.widgets import Input

    from panza_tui.tui.screens.oauth_form import ConsentForm, Gmail

    added: list[str | None] = []
    app.open_gmail_form(added.append, api_root=fake.url)
    await pilot.pause()
    form = app.screen
    assert isinstance(form, ConsentForm) and isinstance(form.provider, Gmail)
    form.query_one("#name", Input).value = "g"
    form.query_one("#client_secrets", Input).value = str(client_file)
    form.query_one("#connect").press()
    return form, added


async def test_gmail_consent_in_the_app_caught_on_the_loopback(
    workspace, fake, client_file, monkeypatch
):
    from panza_core import secrets
    from panza_tui.tui import app as app_module
    from panza_tui.tui.screens import oauth_form

    def browser(url: str) -> bool:  # the user's browser: consents, follows the redirect home
        threading.Thread(target=requests.get, args=(url,), daemon=True).start()
        return True

    monkeypatch.setattr(oauth_form, "open_browser", browser)
    app = app_module.PanzaApp(workspace=workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        form, added = await _fill(app, pilot, fake, client_file)
        assert await until_async(lambda: added, pilot, timeout=30)
    assert added == ["g"] and "authorization_code" in fake.grants
    assert workspace.store.server("g")["email"] == "maya@okafor.example"
    assert workspace.store.addresses("g") == ["maya@okafor.example"]
    assert (
        json.loads(secrets.get_secret("g:gmail").reveal())["refresh_token"] in fake.refresh_tokens
    )


async def test_gmail_consent_without_a_browser_takes_the_pasted_address(
    workspace, fake, client_file, monkeypatch
):
    from textual.widgets import Input, Static

    from panza_tui.tui import app as app_module
    from panza_tui.tui.screens import oauth_form

    monkeypatch.setattr(oauth_form, "open_browser", lambda url: False)  # over SSH
    app = app_module.PanzaApp(workspace=workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        form, added = await _fill(app, pilot, fake, client_file)
        shown = form.query_one("#consent-url", Static)
        assert await until_async(lambda: "/auth?" in str(shown.render()), pilot, timeout=30)
        text = str(shown.render())
        assert text.startswith("Open this address in a browser")
        url = text.split("\n", 1)[1].replace("\n", "").strip()
        # another machine's browser: consent, then a redirect to a localhost it cannot reach
        redirected = requests.get(url, allow_redirects=False).headers["Location"]
        form.query_one("#pasted", Input).value = "http://localhost:1/?state=wrong&code=x"
        form.query_one("#use-pasted").press()
        assert await until_async(lambda: "did not complete" in str(
            form.query_one("#error", Static).render()), pilot, timeout=30)  # fmt: skip
        assert added == [] and workspace.store.accounts() == []
        form.query_one("#connect").press()  # again, with a fresh consent
        assert await until_async(lambda: "/auth?" in str(shown.render())
                                 and str(shown.render()) != text, pilot, timeout=30)  # fmt: skip
        url = str(shown.render()).split("\n", 1)[1].replace("\n", "").strip()
        redirected = requests.get(url, allow_redirects=False).headers["Location"]
        form.query_one("#pasted", Input).value = redirected
        form.query_one("#use-pasted").press()
        assert await until_async(lambda: added, pilot, timeout=30)
    assert added == ["g"] and workspace.store.server("g")["kind"] == "gmail"


async def test_imap_xoauth2_account_from_the_app_against_dovecot(workspace, client_file, fake,
                                                                 monkeypatch):  # fmt: skip
    """Microsoft 365 style: consent at the provider (the stand-in), the refresh token stored,
    and the login tested with XOAUTH2 against Dovecot's oauth2 passdb, which asks the
    provider (RFC 7662 introspection) whether the access token is good."""

    from textual.widgets import Input, Select

    from panza_core import secrets
    from panza_tui.tui import app as app_module
    from panza_tui.tui.screens import oauth_form
    from sync import imap
    from tests.sync import dovecot

    require("dovecot")

    def browser(url: str) -> bool:
        threading.Thread(target=requests.get, args=(url,), daemon=True).start()
        return True

    monkeypatch.setattr(oauth_form, "open_browser", browser)
    server = dovecot.start(tls=False, introspection_url=f"{fake.url}/introspect")
    try:
        app = app_module.PanzaApp(workspace=workspace)
        async with app.run_test(size=(120, 50)) as pilot:
            added: list[str | None] = []
            app.open_imap_oauth_form(added.append)
            await pilot.pause()
            form = app.screen
            values = {"name": "work", "host": "127.0.0.1", "port": str(server.port),
                      "user": server.user, "auth_uri": f"{fake.url}/auth",
                      "token_uri": f"{fake.url}/token", "client_id": "cid",
                      "client_secret": "csecret", "scope": "imap offline_access"}  # fmt: skip
            for key, value in values.items():
                form.query_one(f"#{key}", Input).value = value
            form.query_one("#security", Select).value = "plain"
            form.query_one("#connect").press()
            assert await until_async(lambda: added, pilot, timeout=30)
        assert added == ["work"]
        settings = imap.ImapServer.from_json(workspace.store.server("work"))
        assert (settings.auth, settings.oauth_token_uri) == ("xoauth2", f"{fake.url}/token")
        stored = json.loads(secrets.get_secret("work:imap").reveal())
        assert stored["refresh_token"] in fake.refresh_tokens
        assert fake.grants == ["authorization_code", "refresh_token"]  # consent, then login
    finally:
        server.stop()
