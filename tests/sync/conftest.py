"""A fresh Dovecot per test, with helpers to put mail into its folders."""

from __future__ import annotations

import shutil
import ssl

import pytest

from tests.sync import dovecot
from tests.system_packages import require


@pytest.fixture()
def imap_server():
    require("dovecot")
    server = dovecot.start()
    yield server
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


def client_for(server, tls: bool = False):
    """A second, independent IMAP client: the user's other mail program."""
    from imapclient import IMAPClient

    if tls:
        context = ssl.create_default_context(cafile=str(server.cert))
        client = IMAPClient("127.0.0.1", port=server.tls_port, ssl=True, ssl_context=context)
    else:
        client = IMAPClient("127.0.0.1", port=server.port, ssl=False)
    client.login(server.user, server.password)
    return client


def append_all(server, folder: str, messages) -> None:
    """APPEND raw messages to ``folder`` as the user would have sent them."""
    client = client_for(server)
    for raw in messages:
        client.append(folder, raw)
    client.logout()
