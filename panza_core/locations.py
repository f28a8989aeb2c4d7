"""Where Panza keeps its files. Nothing is created until a path is asked for.

All data lives under one home folder: ``$PANZA_HOME`` if set, else the platform's user data
dir (``~/.local/share/panza`` on Linux). The home is private to its owner (0700): it holds
the user's whole mail, and on a shared machine (a GPU server) other local users must not
read it; everything else lives inside it.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def home() -> Path:
    """The Panza data folder, created if missing."""
    env = os.environ.get("PANZA_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("panza", appauthor=False))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    private(path, 0o700)
    return path


def private(path: Path, mode: int = 0o600) -> Path:
    """Make ``path`` (ours) readable by its owner only, if it is more open than ``mode``;
    returns it. A path owned by someone else is left alone."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return path
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(mode)
    return path


def cache_dir() -> Path:
    """Rebuildable files (the dequantized base model): ``$PANZA_CACHE`` or ``<home>/cache``."""
    env = os.environ.get("PANZA_CACHE")
    path = Path(env).expanduser() if env else home() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_file() -> Path:
    """``config.toml`` in the home folder (may not exist yet)."""
    return home() / "config.toml"


def database_file() -> Path:
    """The SQLite store."""
    return home() / "panza.sqlite3"


def check_account_name(name: str) -> str:
    """Return ``name`` if it is safe as a folder name, else raise ``AccountError``."""
    from panza_core.errors import AccountError

    if not _SAFE.match(name):
        raise AccountError(
            f"invalid account name {name!r}: use letters, digits, '.', '_' or '-' (max 64)"
        )
    return name


def account_dir(account: str) -> Path:
    """Per-account folder holding the retrieval index and runs."""
    path = home() / "accounts" / check_account_name(account)
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir(account: str, run_id: int) -> Path:
    """Folder of one train/export/eval run of ``account``."""
    path = account_dir(account) / "runs" / f"{run_id:04d}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def index_file(account: str) -> Path:
    """The account's usearch index of sent-mail embeddings."""
    return account_dir(account) / "retrieval.usearch"
