"""One root for every error Panza raises on purpose, so the CLI and TUI can show it cleanly.

Each message names the cause and, where there is one, the fix.
"""


class PanzaError(Exception):
    """Base class of all deliberate Panza errors."""


class ConfigError(PanzaError):
    """The TOML config is unreadable or holds an invalid value."""


class AccountError(PanzaError):
    """An account is missing, or exists already."""


class ImportSourceError(PanzaError):
    """A mail source (mbox, maildir, .eml, JSON lines) cannot be read."""


class ModelError(PanzaError):
    """A model file or directory is missing, unreadable or of an unsupported kind."""


class PipelineError(PanzaError):
    """A pipeline step ran before the step it needs (e.g. training before playback)."""


class CheckpointError(PanzaError):
    """A saved adapter, checkpoint or GGUF is missing or corrupt."""


class SyncError(PanzaError):
    """Talking to the mail server failed: unreachable, dropped, refused, or untrusted TLS."""


class AuthError(SyncError):
    """The server refused the login (wrong password, expired token)."""


class BackendError(PanzaError):
    """llama.cpp cannot run on this machine: no CPU backend fits, or the build is broken."""


DEBUG_HINT = "run the command again with --debug and report the traceback"


def describe(exc: BaseException, bug_hint: str = DEBUG_HINT) -> str:
    """``exc`` as one plain line (no markup, no traceback, no locals): what happened and
    what to do. Panza's own errors say so themselves; a full disk, a damaged store, a killed
    worker and TLS or network failures get the cause and the fix; anything else is named a
    bug with ``bug_hint``. Used by the CLI and by every worker of the app, so that no error
    escapes as a traceback. The text may hold a server's or a file's words: show it through
    ``untrusted.plain``."""
    import sqlite3
    import ssl
    from concurrent.futures.process import BrokenProcessPool

    if isinstance(exc, PanzaError):
        text = str(exc)
    elif isinstance(exc, ssl.SSLError):
        text = f"a TLS connection failed ({exc.reason or exc}); check the server's address and port"
    elif isinstance(exc, OSError):  # a full disk, a read-only folder, a vanished file
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        text = f"{exc.strerror or exc}{where}; finished work is kept"
    elif isinstance(exc, sqlite3.Error):
        text = (
            f"the mail store failed ({exc}). If it is locked, another panza is writing it: "
            "run again when that finishes; if it is damaged, restore it from a backup"
        )
    elif isinstance(exc, BrokenProcessPool):
        text = "a worker process died (out of memory, or killed); finished work is kept: try again"
    else:
        text = f"unexpected {type(exc).__name__}: {exc}. This is a bug in Panza: {bug_hint}"
    return " ".join(text.split())
