"""What language models this machine has (``panza models``): the embedded default, models
in the Hugging Face cache, base models converted to GGUF, and every account's exports.

Listing reads only the disk and the store: it never downloads or loads a model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from panza_core import hub, locations, models, versions
from panza_core.errors import ModelError
from panza_core.store import Store


@dataclass(frozen=True)
class LocalModel:
    """One model on disk. ``where``: embedded, hub (Hugging Face cache), converted (a Hub or
    folder base as GGUF) or export (an account's fine-tune). ``spec`` is what to write in
    ``[models] llm`` to use it as a base ("" for exports, which drafting picks per account).
    ``size`` in bytes."""

    where: str
    name: str
    spec: str
    size: int
    path: Path


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def embedded() -> Iterator[LocalModel]:
    """The default SmolLM2-135M-Instruct GGUF, where its package is installed."""
    try:
        ref = models.resolve_llm("embedded")
    except ModelError:
        return
    yield LocalModel("embedded", ref.name, "embedded", _size(ref.path), ref.path)


def hub_cache() -> Iterator[LocalModel]:
    """Loadable models in the Hugging Face cache, newest snapshot of each."""
    for model in hub.cached():
        yield LocalModel("hub", model.repo, model.repo, model.size, model.path)


def converted() -> Iterator[LocalModel]:
    """Base models converted to GGUF for drafting an adapter-only export over them."""
    for gguf in sorted((locations.cache_dir() / "base").glob("*/base-*.gguf")):
        yield LocalModel("converted", gguf.parent.name, str(gguf), _size(gguf), gguf)


def exports(store: Store) -> Iterator[LocalModel]:
    """Every account's finished exports whose files are still there."""
    for account in store.accounts():
        for v in versions.versions(store, account):
            form = "adapter" if v.adapter_only else "merged"
            name = f"{account} export #{v.run} ({v.method}, {v.quant}, {form})"
            yield LocalModel("export", name, "", _size(Path(v.path)), Path(v.path))


def available(store: Store) -> list[LocalModel]:
    """Everything above, in that order."""
    return [*embedded(), *hub_cache(), *converted(), *exports(store)]
