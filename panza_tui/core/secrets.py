"""Passwords and OAuth tokens: in the system keyring, never in config.toml or the store.

Where no keyring backend exists (a headless server, a container), secrets go to a 0600
JSON file in the Panza home instead, and ``set_secret`` says so in its return value so the
CLI can tell the user. The file is written whole to a new temporary file (``O_EXCL`` and
``O_NOFOLLOW``: never through a link someone planted) and renamed over the old one, so a
crash leaves the old or the new secrets, never half of them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from secrets import token_hex  # the standard library's, not this module

from panza_tui.core import locations
from panza_tui.core.errors import PanzaError

SERVICE = "panza-tui"


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


def set_secret(key: str, value: str) -> str:
    """Store ``value`` under ``key``; returns where it went: ``keyring`` or the file path.
    Raises ``PanzaError`` if the secrets file exists but is damaged."""
    ring = _keyring()
    if ring is not None:
        ring.set_password(SERVICE, key, value)
        return "keyring"
    data = _read_file()
    data[key] = value
    return str(_write_file(data))


def get_secret(key: str) -> str | None:
    """The secret stored under ``key``, or None."""
    ring = _keyring()
    if ring is not None:
        value = ring.get_password(SERVICE, key)
        if value is not None:
            return value
    return _read_file().get(key)


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
