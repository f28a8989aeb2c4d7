"""Passwords and OAuth tokens: in the system keyring, never in config.toml or the store.

Where no keyring backend exists (a headless server, a container), secrets go to a 0600
JSON file in the Panza home instead, and ``set_secret`` says so in its return value so the
CLI can tell the user.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from panza_tui.core import locations

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
    path = _file()
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def set_secret(key: str, value: str) -> str:
    """Store ``value`` under ``key``; returns where it went: ``keyring`` or the file path."""
    ring = _keyring()
    if ring is not None:
        ring.set_password(SERVICE, key, value)
        return "keyring"
    data = _read_file()
    data[key] = value
    path = _file()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    tmp.replace(path)
    return str(path)


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
        set_file = _file()
        set_file.write_text(json.dumps(data), encoding="utf-8")
