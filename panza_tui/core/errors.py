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
