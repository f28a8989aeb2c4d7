"""Which model drafts for an account: its active export, else the base GGUF."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from panza_core.errors import PipelineError
from panza_core.store import Run
from panza_core.workspace import Workspace


@dataclass(frozen=True)
class ModelChoice:
    """What llama.cpp loads for an account: a GGUF and optionally a LoRA adapter GGUF."""

    path: Path
    lora: Path | None
    label: str


def export_choice(ws: Workspace, run: Run) -> ModelChoice:
    """What llama.cpp loads for a finished export run (merged GGUF, or base + adapter GGUF).

    Raises ``PipelineError`` if the run is not a finished export whose file still exists.
    """
    if run.kind != "export" or run.status != "done" or not Path(run.path).exists():
        raise PipelineError(f"run #{run.id} is not a finished export with its GGUF on disk")
    if run.config.get("adapter_only"):
        # A Hugging Face base was converted to GGUF for the adapter; the run names that file.
        base = Path(run.metrics.get("base") or ws.llm.path)
        return ModelChoice(base, Path(run.path), f"{ws.llm.name} + adapter #{run.id}")
    return ModelChoice(Path(run.path), None, f"fine-tuned #{run.id} ({Path(run.path).name})")


def base_choice(ws: Workspace, account: str) -> ModelChoice:
    """The base GGUF; raises ``PipelineError`` for a Hugging Face base (export it first)."""
    if ws.llm.kind == "gguf":
        return ModelChoice(ws.llm.path, None, f"{ws.llm.name} (base)")
    raise PipelineError(
        f"the base model {ws.llm.path} is not a GGUF: run 'panza export --account {account}' first"
    )


def active_export(ws: Workspace, account: str) -> Run | None:
    """The account's active export run (else its newest), or None if it has none on disk."""
    active = ws.store.account(account).active_export
    run = ws.store.run(active) if active else ws.store.latest_run(account, "export")
    if run is not None and run.status == "done" and Path(run.path).exists():
        return run
    return None


def choose_model(ws: Workspace, account: str, use_adapter: bool = True) -> ModelChoice:
    """The account's active export if any (and ``use_adapter``), else the base GGUF.

    Raises ``PipelineError`` when neither exists (a Hugging Face base must be exported first).
    """
    run = active_export(ws, account) if use_adapter else None
    return export_choice(ws, run) if run is not None else base_choice(ws, account)
