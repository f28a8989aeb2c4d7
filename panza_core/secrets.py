"""Passwords and OAuth tokens: in the system keyring, never in config.toml or the store.

Where no keyring backend exists (a headless server, a container), secrets go to a 0600
JSON file in the Panza home instead, and ``set_secret`` says so in its return value so the
CLI can tell the user. The file is written whole to a new temporary file (``O_EXCL`` and
``O_NOFOLLOW``: never through a link someone planted) and renamed over the old one, so a
crash leaves the old or the new secrets, never half of them.

A secret read back is a ``Secret``: its ``repr`` and ``str`` are redacted, so a traceback
with its local variables, a log line or an f-string cannot show it; only ``reveal()``, at
the login call, gives the text.
"""

from __future__ import annotations

import hmac
import json
import os
from pathlib import Path
from secrets import token_hex  # the standard library's, not this module
from typing import Any

from panza_core import locations
from panza_core.errors import PanzaError

SERVICE = "panza-tui"


class Secret:
    """A password, access token or refresh-token JSON that never prints.

    ``repr`` and ``str`` give ``Secret('********')`` (the CLI, logs, Rich and Textual
    tracebacks with locals all use one of them); ``reveal()`` returns the text, to be called
    only where it is handed to a login or token request. Equality is by value (constant
    time); pickling is refused, so the value cannot leave the process by accident.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        self._value = str(value)

    def reveal(self) -> str:
        """The secret's text."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not pickled")


def _file() -> Path:
    return locations.home() / "secrets.json"


def _keyring():  # type: ignore[no-untyped-def]
    """The keyring module if a real backend is available, else None."""
    if os.environ.get("PANZA_NO_KEYRING"):
        return None
    try:
        import keyring
        from keyring.backends import fail

        return None if isinstance(keyring.get_keyring(), fail.Keyring) else keyring
    except Exception:  # a broken backend (no D-Bus session, locked store) means no keyring
        return None


def _read_file() -> dict[str, str]:
    """The secrets file's contents; raises ``PanzaError`` naming the file if it is not a
    JSON object of strings (the user's other secrets are never overwritten then)."""
    path = _file()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        data = exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise PanzaError(
            f"{path} is damaged (not a JSON object of secrets): move it away and add the "
            "account again with 'panza account add'"
        )
    return data


def _write_file(data: dict[str, str]) -> Path:
    path = _file()
    tmp = path.with_name(f".secrets.{token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def set_secret(key: str, value: Secret | str) -> str:
    """Store ``value`` under ``key``; returns where it went: ``keyring`` or the file path.
    Raises ``PanzaError`` if the secrets file exists but is damaged."""
    value = value.reveal() if isinstance(value, Secret) else value
    ring = _keyring()
    if ring is not None:
        ring.set_password(SERVICE, key, value)
        return "keyring"
    data = _read_file()
    data[key] = value
    return str(_write_file(data))


def get_secret(key: str) -> Secret | None:
    """The secret stored under ``key`` (redacted when printed), or None."""
    ring = _keyring()
    if ring is not None:
        found = ring.get_password(SERVICE, key)
        if found is not None:
            return Secret(found)
    stored = _read_file().get(key)
    return None if stored is None else Secret(stored)


def delete_secret(key: str) -> None:
    """Forget ``key`` wherever it is stored."""
    ring = _keyring()
    if ring is not None:
        try:
            ring.delete_password(SERVICE, key)
        except Exception:  # not there: nothing to delete
            pass
    data = _read_file()
    if data.pop(key, None) is not None:
        _write_file(data)
