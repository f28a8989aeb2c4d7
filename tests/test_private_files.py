"""Issue 13: the Panza home holds the user's whole mail; on a shared machine no other local
user may read it. Secrets are written so that a crash or a planted link cannot leak them."""

import json
import os
import stat

import pytest

from panza_core import locations, secrets
from panza_core.errors import PanzaError
from panza_core.store import Store


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_home_and_store_are_private_even_when_the_home_existed_open(home):
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)  # as an older Panza (or the umask) left it
    with Store(locations.database_file()) as store:
        store.add_account("me")
    assert mode(home) == 0o700
    assert mode(locations.database_file()) == 0o600
    assert all(mode(p) & 0o077 == 0 for p in home.glob("panza.sqlite3*"))


def test_secrets_file_is_0600_replaced_whole_and_never_through_a_link(home, tmp_path):
    assert secrets.set_secret("me:imap", "pw1") == str(home / "secrets.json")
    assert mode(home / "secrets.json") == 0o600
    secrets.set_secret("other:imap", "pw2")
    secrets.delete_secret("me:imap")
    assert json.loads((home / "secrets.json").read_text()) == {"other:imap": "pw2"}
    assert not list(home.glob("*.tmp")) and not list(home.glob(".secrets.*"))
    # A link planted where an old Panza wrote its temporary file is never written through.
    target = tmp_path / "stolen"
    os.symlink(target, home / "secrets.tmp")
    secrets.set_secret("me:imap", "pw3")
    assert not target.exists() and secrets.get_secret("me:imap") == secrets.Secret("pw3")


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"a": 1}', "\udcff"])
def test_a_damaged_secrets_file_is_one_clear_line_and_is_not_overwritten(home, content):
    home.mkdir(mode=0o700)
    path = home / "secrets.json"
    path.write_text(content, encoding="utf-8", errors="surrogateescape")
    before = path.read_bytes()
    for call in (lambda: secrets.get_secret("x"), lambda: secrets.set_secret("x", "y")):
        with pytest.raises(PanzaError, match="secrets.json is damaged"):
            call()
    assert path.read_bytes() == before
