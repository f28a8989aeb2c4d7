"""Everything a command needs, opened lazily: config, store, models, retrieval index."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panza_core import config as config_mod
from panza_core import locations, models, prompting
from panza_core.config import Config
from panza_core.store import Store


@dataclass
class Workspace:
    """One user's Panza data. Cheap to create; models load on first use."""

    config: Config = field(default_factory=config_mod.load)
    store: Store = field(default_factory=Store)
    _indexes: dict = field(default_factory=dict, repr=False)

    @functools.cached_property
    def llm(self) -> models.ModelRef:
        """The base language model (``[models] llm``)."""
        return models.resolve_llm(self.config.models.llm)

    @functools.cached_property
    def chat_template(self) -> str:
        """The base model's chat template (shared by training and drafting)."""
        return models.chat_template(self.llm)

    @functools.cached_property
    def stops(self) -> list[str]:
        """Where a drafted email ends: the text that closes the model's assistant turn."""
        return prompting.turn_ends(self.chat_template, models.eos_text(self.llm))

    @functools.cached_property
    def embedder(self):  # type: ignore[no-untyped-def]
        """The sentence embedder for retrieval (loads on first encode)."""
        from panza_core.retrieval import Embedder

        return Embedder(models.resolve_embedding(self.config.models.embedding))

    def index(self, account: str):  # type: ignore[no-untyped-def]
        """The account's retrieval index (opened once per workspace)."""
        from panza_core.retrieval import EmailIndex

        if account not in self._indexes:
            path = locations.index_file(account)
            dim = None if EmailIndex.usable(path) else self.embedder.dim
            self._indexes[account] = EmailIndex(path, dim)
        return self._indexes[account]

    def update_index(
        self, account: str, progress: Callable[[int, int], None] | None = None,
        every_core: bool = False,
    ) -> int:  # fmt: skip
        """Embed the account's new messages into its retrieval index; returns how many.
        ``progress(done, total)`` after each batch; ``every_core`` for a batch job
        (``retrieval.update_index``)."""
        from panza_core.retrieval import update_index

        index = self.index(account)
        return update_index(self.store, account, self.embedder, index, progress, every_core)

    def with_config(self, **sections: dict[str, Any]) -> Workspace:
        """A workspace on the same store and indexes with some settings changed
        (``Config.with_``); the loaded embedder is shared when the embedding model stays."""
        changed = dataclasses.replace(self, config=self.config.with_(**sections))
        same_model = changed.config.models.embedding == self.config.models.embedding
        if "embedder" in self.__dict__ and same_model:
            changed.__dict__["embedder"] = self.__dict__["embedder"]
        return changed

    def run_path(self, account: str, run_id: int) -> Path:
        """Folder of run ``run_id`` of ``account``."""
        return locations.run_dir(account, run_id)
