"""Retrieval of the user's past emails for a prompt (RAG).

Sentence embeddings (all-MiniLM-L6-v2 by default, 384 dimensions, L2-normalised) in a
``usearch`` cosine index per account, saved next to the store. The index is keyed by the
store's message row ids and updated incrementally: only messages not yet in it are embedded.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panza_core import locations, threads
from panza_core.errors import PanzaError
from panza_core.store import Message, Store


def email_text(message: Message) -> str:
    """What is embedded for a stored email: subject line, blank line, body."""
    return f"{message.subject}\n\n{message.text}" if message.subject else message.text


def _usearch_index() -> Any:
    """usearch's ``Index`` class, imported only after llama.cpp's libraries are loaded (see
    ``panza_core.llama.preload``: in the other order llama.cpp can no longer load a model)."""
    from panza_core.llama import preload

    preload()
    from usearch.index import Index

    return Index


class Embedder:
    """A sentence-transformers model loaded from a local folder, offline, on the CPU.

    ``encode`` returns float32 arrays of shape (n, dim), each row L2-normalised.
    """

    def __init__(self, path: Path, n_threads: int = 0) -> None:
        self.path = path
        self.n_threads = n_threads
        self._model: Any = None
        self._every_core = False

    def _load(self) -> Any:
        if self._model is None:
            import torch
            from sentence_transformers import SentenceTransformer

            from panza_core.libraries import quiet_transformers

            quiet_transformers()
            torch.set_num_threads(threads.pick(self.n_threads))
            self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        return self._model

    @property
    def dim(self) -> int:
        """Embedding width (384 for all-MiniLM-L6-v2); loads the model."""
        model = self._load()
        # sentence-transformers 6 renamed the method; older releases only have the long name
        getter = getattr(model, "get_embedding_dimension", None)
        return int(getter() if getter else model.get_sentence_embedding_dimension())

    def encode_query(self, text: str) -> Any:
        """Embed one short text (a query): float32 array (dim,), L2-normalised; the same
        vector as ``encode([text])[0]`` up to float rounding. It calls the model's own
        pre-processing and forward pass without ``encode``'s batching machinery (input
        checks, length sorting, per-row lists, stacking), which costs a query on 2 cores
        a few milliseconds of its ~20."""
        import numpy as np
        import torch

        model = self._load()
        prepare = getattr(model, "preprocess", None) or model.tokenize  # renamed in s-t 6
        with torch.inference_mode():
            out = model(prepare([text]))["sentence_embedding"]
            vector = torch.nn.functional.normalize(out.float(), p=2, dim=1)[0]
        return np.asarray(vector.numpy(), dtype=np.float32)

    def encode(self, texts: Sequence[str], batch_size: int = 32, every_core: bool = False) -> Any:
        """Embed ``texts``: float32 array (len(texts), dim), rows L2-normalised.
        ``every_core``: a batch job (a command line import) may take every core; otherwise
        one is left free for the app (``threads.pick``)."""
        import numpy as np

        model = self._load()
        if every_core and not self._every_core:  # once: the process is a batch job now
            import torch

            torch.set_num_threads(threads.pick(self.n_threads, reserve=0))
            self._every_core = True
        vectors = model.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )  # fmt: skip
        return np.asarray(vectors, dtype=np.float32)


@dataclass
class Hit:
    """A retrieved email: store row ``id`` and cosine similarity ``score`` in [-1, 1]."""

    id: int
    score: float


class EmailIndex:
    """The usearch index of one account's emails, persisted at ``path``, with the content
    hash of every key beside it (``<path>.hashes.json``).

    Keys are store row ids, which the store never reuses (AUTOINCREMENT); the hashes let
    ``update_index`` prove that each vector still belongs to its row's text. An existing file
    is opened without the embedding model (the file records its width), so checking for new
    mail costs no model load; ``dim`` is needed only to start a new index. A corrupt file
    is only a cache of the store: it is replaced by an empty index.
    """

    def __init__(self, path: Path, dim: int | None = None) -> None:
        Index = _usearch_index()

        self.path = path
        self.hashes_path = path.with_name(path.name + ".hashes.json")
        _remove_orphans(path)
        restored = None
        if path.exists():
            try:
                restored = Index.restore(str(path))
            except Exception:
                restored = None
        if restored is None and dim is None:
            raise ValueError("a new index needs its dimension")
        self.index: Any = (
            restored if restored is not None else Index(ndim=dim, metric="cos", dtype="f32")
        )
        self.hashes: dict[int, str] = self._read_hashes() if restored is not None else {}

    def _read_hashes(self) -> dict[int, str]:
        try:
            data = json.loads(self.hashes_path.read_text(encoding="utf-8"))
            return {int(key): str(value) for key, value in data.items()}
        except (OSError, ValueError, AttributeError):  # missing or damaged: nothing proven
            return {}

    @staticmethod
    def usable(path: Path) -> bool:
        """Whether ``path`` holds an index that opens without knowing its width."""
        Index = _usearch_index()

        try:
            return path.exists() and Index.restore(str(path)) is not None
        except Exception:
            return False

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, key: int) -> bool:
        return bool(self.index.contains(key))

    def keys(self) -> list[int]:
        """Every key (store row id) in the index."""
        import numpy as np

        return [int(key) for key in np.asarray(self.index.keys)]

    def vectors(self, keys: Sequence[int]) -> Any:
        """The stored unit vectors of ``keys`` (store ids), as a float32 array (len, dim).
        Raises ``KeyError`` naming a key the index lacks (``update_index`` first)."""
        import numpy as np

        missing = [key for key in keys if key not in self]
        if missing:
            raise KeyError(f"store id {missing[0]} is not in the index")
        if not len(keys):
            return np.zeros((0, self.index.ndim), dtype=np.float32)
        found = np.asarray(self.index.get(np.asarray(keys, dtype=np.uint64)), dtype=np.float32)
        norms = np.linalg.norm(found, axis=1, keepdims=True)
        return found / np.where(norms == 0, 1, norms)

    def add(self, keys: Sequence[int], vectors: Any, hashes: Sequence[str] = ()) -> None:
        """Add ``vectors`` (n, dim) under store ids ``keys`` (n), with the content hashes of
        their emails (n, or none)."""
        import numpy as np

        if len(keys):
            self.index.add(np.asarray(keys, dtype=np.uint64), vectors)
            self.hashes.update(zip(keys, hashes, strict=False))

    def remove(self, keys: Sequence[int], save: bool = True) -> None:
        """Drop emails from the index (and save it, unless ``save`` is False)."""
        import numpy as np

        present = [k for k in keys if k in self]
        for key in keys:
            self.hashes.pop(key, None)
        if present:
            self.index.remove(np.asarray(present, dtype=np.uint64))
            if save:
                self.save()

    def save(self) -> None:
        """Write the index and its hashes, each atomically, through temporary files of this
        process's own (two processes saving at once never write the same file). A crash
        between the two renames leaves keys without a proven hash, which the next
        ``update_index`` embeds again."""
        index_tmp, hashes_tmp = _tmp_name(self.path), _tmp_name(self.hashes_path)
        try:
            self.index.save(str(index_tmp))
            hashes_tmp.write_text(json.dumps({str(k): v for k, v in self.hashes.items()}))
            index_tmp.replace(self.path)
            hashes_tmp.replace(self.hashes_path)
        finally:
            index_tmp.unlink(missing_ok=True)
            hashes_tmp.unlink(missing_ok=True)
        locations.private(self.path)
        locations.private(self.hashes_path)

    def search(self, vector: Any, k: int, exclude: Iterable[int] = ()) -> list[Hit]:
        """Up to ``k`` nearest emails, best first, never one of ``exclude``."""
        banned = set(exclude)
        if len(self.index) == 0 or k <= 0:
            return []
        matches = self.index.search(vector, min(len(self.index), k + len(banned)))
        hits = [
            Hit(int(key), 1.0 - float(dist))
            for key, dist in zip(matches.keys, matches.distances, strict=True)
            if int(key) not in banned
        ]
        return hits[:k]


def _tmp_name(path: Path) -> Path:
    return path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _remove_orphans(path: Path) -> None:
    """Delete temporary files a killed process left beside ``path`` (its pid is gone)."""
    for tmp in path.parent.glob(f"{glob.escape(path.name)}*.tmp"):
        try:
            pid = int(tmp.name.split(".")[-3])
        except (ValueError, IndexError):
            pid = 0
        if pid <= 0 or not _alive(pid):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


# Emails read from the store at a time, sorted by length and embedded EMBED_BATCH at a time:
# emails of similar length share a padded batch. On 2 cores (1,024 usrp-users emails) that
# took 29 ms an email against 55-62 ms for batches in store order. A thousand emails' text
# is a few MB, so memory stays bounded.
READ_BATCH = 1024
EMBED_BATCH = 64
SAVE_EVERY = 4096  # emails embedded between saves of the index (progress a kill keeps)


def update_index(
    store: Store, account: str, embedder: Embedder, index: EmailIndex,
    progress: Callable[[int, int], None] | None = None, every_core: bool = False,
) -> int:  # fmt: skip
    """Reconcile the index with the store, then save it: drop every key whose row is gone
    or whose content hash is not proven to match the row (a vector of other text), embed
    every email of the account not in the index (its own mail, tombstones included: they
    are still the user's writing). Returns how many emails were embedded.

    Memory stays bounded whatever the mailbox size: texts are read from the store
    ``READ_BATCH`` at a time, and the index is saved every ``SAVE_EVERY`` emails, so a
    killed run keeps what it embedded. ``progress(done, total)`` after each batch;
    ``every_core`` for a batch job (``Embedder.encode``)."""
    wanted = store.own_hashes(account)
    stale = [key for key in index.keys()
             if key not in wanted or index.hashes.get(key) != wanted[key]]  # fmt: skip
    index.remove(stale, save=False)
    missing = [key for key in wanted if key not in index]
    since_save = done = 0
    for start in range(0, len(missing), READ_BATCH):
        read = store.messages_by_id(missing[start : start + READ_BATCH])
        read.sort(key=lambda m: len(email_text(m)))
        for at in range(0, len(read), EMBED_BATCH):
            batch = read[at : at + EMBED_BATCH]
            index.add([m.id for m in batch if m.id is not None],
                      embedder.encode([email_text(m) for m in batch], every_core=every_core),
                      [m.content_hash for m in batch])  # fmt: skip
            since_save += len(batch)
            if since_save >= SAVE_EVERY:
                index.save()
                since_save = 0
            done += len(batch)
            if progress:
                progress(done, len(missing))
        del read
    if missing or stale:
        index.save()
    return len(missing)


def search_emails(
    store: Store, index: EmailIndex, vector: Any, top_k: int, threshold: float,
    exclude: Iterable[int] = (), correspondent: str | None = None,
) -> list[tuple[Hit, Message]]:  # fmt: skip
    """Up to ``top_k`` past emails with cosine similarity >= ``threshold``, best first.

    With ``correspondent`` (an address), emails the user sent to that person come before the
    others among the ``4 * top_k`` nearest: how someone writes to a given person is the best
    guide to a reply to them. Training (RAFT) and drafting both retrieve through here.
    """
    pool = top_k * 4 if correspondent else top_k
    hits = [h for h in index.search(vector, pool, exclude) if h.score >= threshold]
    found = []
    for hit in hits:
        try:
            found.append((hit, store.message(hit.id)))
        except PanzaError:  # purged since the index was last reconciled
            continue
    if correspondent:
        who = correspondent.lower()
        found.sort(key=lambda pair: who not in f"{pair[1].to_addrs} {pair[1].cc_addrs}".lower())
    return found[:top_k]
