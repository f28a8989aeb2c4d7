"""Export an account's fine-tuned model as a quantized GGUF that llama.cpp runs on a CPU.

Two forms:
- merged (default): the adapter is merged into the base weights (``methods.load_merged``:
  PEFT ``merge_and_unload``, RoSA's sparse part added first; a full fine-tune as is),
  written as F32 GGUF, checked against the torch model, then quantized by llama.cpp's own
  ``llama_model_quantize`` (Q8_0 by default; Q4_K_M, F16, ...).
- ``adapter_only``: a GGUF LoRA adapter that llama.cpp applies on top of the base GGUF
  (``lora_path=``), a few MB instead of a whole model; LoRA only (the format has no place
  for RoSA's sparse part). A Hugging Face base is converted to GGUF once for it
  (``base_gguf``). Accounts with such adapters share one loaded base when drafting.

Both conversions are llama.cpp's own (``training.convert``), for every architecture it knows.

The round trip is verified on a fixed prompt: llama.cpp's logits on the exported file are
compared with the merged torch model's, and the numbers are stored with the run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from panza_core import prompting, threads
from panza_core.errors import CheckpointError, ModelError, PipelineError
from panza_core.workspace import Workspace
from training import base_model, convert, methods

QUANT_TYPES = ("Q8_0", "Q4_K_M", "Q5_K_M", "Q4_0", "F16", "F32")
CHECK_INSTRUCTION = "Write a short note thanking a colleague for their help this week."


@dataclass(frozen=True)
class LogitCheck:
    """llama.cpp vs torch logits over the ``tokens`` positions of a fixed prompt: absolute
    differences (logits), the share of positions with the same top-1 token, and that share
    over positions that are not near-ties (``near_ties`` of them are left out)."""

    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float
    top1_agreement_clear: float
    near_ties: int
    tokens: int


@dataclass(frozen=True)
class ExportMetrics:
    """What an export measured: ``check`` on the GGUF drafting uses (after quantization),
    ``check_f32`` on the F32 GGUF before it (None for an adapter), the file's size in bytes,
    and for an adapter the base GGUF it applies to."""

    check: LogitCheck
    check_f32: LogitCheck | None
    bytes: int
    base: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for the store)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportMetrics:
        """Read a stored export run's metrics."""
        f32 = data.get("check_f32")
        return cls(
            LogitCheck(**data["check"]), LogitCheck(**f32) if f32 else None,
            int(data.get("bytes", 0)), str(data.get("base", "")),
        )  # fmt: skip


@dataclass(frozen=True)
class ExportResult:
    """A finished (or reused) export: ``path`` is the GGUF to draft with."""

    run_id: int
    path: Path
    metrics: ExportMetrics
    adapter_only: bool
    reused: bool = False


def _ftype(quant: str) -> int:
    from panza_core.llama import import_llama_cpp

    llama_cpp = import_llama_cpp()
    table = {
        "Q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
        "Q4_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M,
        "Q5_K_M": llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_K_M,
        "Q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
        "F16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16,
        "F32": llama_cpp.LLAMA_FTYPE_ALL_F32,
    }
    if quant not in table:
        raise ModelError(
            f"unknown quantization type {quant!r}; choose one of {', '.join(QUANT_TYPES)}"
        )
    return table[quant]


def quantize(source: Path, target: Path, quant: str) -> Path:
    """Quantize a GGUF with llama.cpp; raises ``CheckpointError`` if llama.cpp fails."""
    from panza_core.llama import import_llama_cpp

    llama_cpp = import_llama_cpp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = _ftype(quant)
    params.nthread = threads.pick()
    with _captured_stderr() as log:
        code = llama_cpp.llama_model_quantize(
            str(source).encode(), str(target).encode(), ctypes.byref(params)
        )
    if code != 0 or not target.exists():
        tail = log.read_text(errors="replace")[-2000:]
        raise CheckpointError(
            f"llama.cpp failed to quantize {source} to {quant} (code {code}): {tail}"
        )
    return target


@contextlib.contextmanager
def _captured_stderr() -> Iterator[Path]:
    """Send C-level stderr to a temporary file: llama.cpp prints a line per tensor that
    falls back to another type (576-wide rows do not fit K-quants' 256 blocks), which is
    expected here and only worth showing when quantization fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.NamedTemporaryFile(prefix="panza-quantize-", suffix=".log") as handle:
        os.dup2(handle.fileno(), 2)
        try:
            yield Path(handle.name)
        finally:
            os.dup2(saved, 2)
            os.close(saved)


NEAR_TIE = 0.25
"""Logits. An F32 GGUF and the torch model differ by up to ~0.04 per logit (F16 steps inside
llama.cpp's attention, other summation orders), so a lead under 0.25 is a near-tie."""


def check_ids(ws: Workspace, tokenizer: Any) -> list[int]:
    """Token ids of the fixed round-trip prompt (the drafting prompt format, no RAG)."""
    prompt = prompting.build(ws.chat_template, ws.config.prompt.system, CHECK_INSTRUCTION)
    return tokenizer(prompt, add_special_tokens=True)["input_ids"]


def compare_logits(
    gguf_path: Path, torch_model: Any, ids: list[int], lora_path: Path | None = None
) -> LogitCheck:
    """llama.cpp vs torch logits on ``ids``: max/mean absolute difference, top-1 agreement.

    Agreement is the fraction of positions whose most likely next token is the same;
    ``top1_agreement_clear`` counts only positions where torch's best token leads the second
    by more than ``NEAR_TIE`` logits (``near_ties`` positions are left out): at a near-tie,
    float rounding that differs between CPUs may pick either token, at a clear lead it may not.
    """
    import numpy as np
    import torch

    from panza_core import llama

    llm = llama.load(gguf_path, lora_path=lora_path, n_ctx=max(512, len(ids) + 8), logits_all=True)
    llm.eval(ids)
    ours = np.asarray(llm.scores[: len(ids)], dtype=np.float32)
    with torch.no_grad():
        reference = torch_model(input_ids=torch.tensor([ids])).logits[0].float().numpy()
    diff = np.abs(ours - reference)
    agree = ours.argmax(-1) == reference.argmax(-1)
    top2 = np.sort(reference, axis=-1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > NEAR_TIE
    return LogitCheck(
        max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean()),
        top1_agreement=float(agree.mean()),
        top1_agreement_clear=float(agree[clear].mean()) if clear.any() else 1.0,
        near_ties=int((~clear).sum()), tokens=len(ids),
    )  # fmt: skip


def export(
    ws: Workspace, account: str, quant: str = "Q8_0", adapter_only: bool = False,
    train_run: int | None = None, force: bool = False,
) -> ExportResult:  # fmt: skip
    """Export the latest (or given) training run of ``account``; reuses an identical export.

    Raises ``PipelineError`` if the account has no finished training run, ``ModelError`` for
    an unknown quantization or unsupported model, ``CheckpointError`` for a missing adapter.
    """
    _ftype(quant)  # fail before any work on a bad name
    ws.store.account(account)
    trained = ws.store.run(train_run) if train_run else ws.store.latest_run(account, "train")
    if trained is not None and (trained.account != account or trained.kind != "train"):
        raise PipelineError(f"run #{trained.id} is not a training run of {account!r}")
    if trained is None or trained.status != "done":
        raise PipelineError(f"account {account!r} has no finished training run: run 'panza train'")
    adapter = Path(trained.path)
    method = methods.method_of(adapter)  # CheckpointError if missing or incomplete
    if adapter_only and not methods.METHODS[method].gguf_adapter:
        raise PipelineError(
            f"run #{trained.id} is {method}: llama.cpp adapters carry only LoRA factors, so "
            "it is exported merged (drop --adapter-only)"
        )
    key = prompting.fingerprint(trained.id, trained.input_hash, quant, adapter_only)
    previous = ws.store.find_run(account, "export", key)
    if previous and not force and Path(previous.path).exists():
        metrics = ExportMetrics.from_json(previous.metrics)
        return ExportResult(previous.id, Path(previous.path), metrics, adapter_only, True)

    sweep_unfinished(ws, account)
    run_id = ws.store.start_run(
        account, "export", key, {"quant": quant, "adapter_only": adapter_only}, parent=trained.id
    )
    folder = ws.run_path(account, run_id)
    try:
        path, metrics = _export(ws, adapter, folder, quant, adapter_only)
    except BaseException:
        ws.store.finish_run(run_id, "failed")
        for leftover in folder.glob("*.gguf*"):
            leftover.unlink(missing_ok=True)
        raise
    ws.store.finish_run(run_id, "done", str(path), metrics.to_json())
    ws.store.set_active_export(account, run_id)
    return ExportResult(run_id, path, metrics, adapter_only)


def sweep_unfinished(ws: Workspace, account: str) -> list[Path]:
    """Delete what killed exports of ``account`` left in their run folders (a ``*.tmp``
    GGUF, a ``merged-*`` model folder, a partial ``*.gguf``) and mark those runs failed; a
    killed process never reached its own clean-up. Returns the paths removed."""
    removed: list[Path] = []
    for run in ws.store.runs(account, "export"):
        if run.status == "done":
            continue
        folder = ws.run_path(account, run.id)
        for leftover in [*folder.glob("*.tmp"), *folder.glob("merged-*"), *folder.glob("*.gguf")]:
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed.append(leftover)
        if run.status == "running":
            ws.store.finish_run(run.id, "failed")
    return removed


def base_gguf(ws: Workspace, quant: str) -> Path:
    """The base model as a GGUF that llama.cpp applies an adapter to: the base itself when it
    is one, else a Hugging Face base converted once (and quantized to ``quant``) into the
    cache, keyed by the weights' fingerprint. Raises ``ModelError``."""
    if ws.llm.kind == "gguf":
        return ws.llm.path
    folder = base_model.cache_dir(ws.llm)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"base-{quant}.gguf"
    if path.exists():
        return path
    full = convert.model_to_gguf(ws.llm.path, folder / "base-F32.gguf.part", name=ws.llm.name)
    if quant == "F32":
        return full.replace(path)
    quantize(full, path.with_name(path.name + ".tmp"), quant).replace(path)
    full.unlink()
    return path


def _export(
    ws: Workspace, adapter: Path, folder: Path, quant: str, adapter_only: bool
) -> tuple[Path, ExportMetrics]:
    base_model.setup_torch()
    model, tokenizer = base_model.load(ws.llm)
    ids = check_ids(ws, tokenizer)
    if adapter_only:
        from peft import PeftModel

        try:
            peft_model = PeftModel.from_pretrained(model, adapter)
        except Exception as exc:  # safetensors, JSON or shape errors: a bad checkpoint
            raise CheckpointError(
                f"{adapter}: cannot load the adapter ({type(exc).__name__}: {exc}); "
                "retrain with 'panza train --force'"
            ) from exc
        target = base_gguf(ws, quant)
        path = convert.lora_to_gguf(adapter, base_model.hf_folder(ws.llm), folder / "adapter.gguf")
        merged = peft_model.merge_and_unload().eval()
        check = compare_logits(target, merged, ids, lora_path=path)
        return path, ExportMetrics(check, None, path.stat().st_size, str(target))

    merged = methods.load_merged(model, adapter)
    with tempfile.TemporaryDirectory(prefix="merged-", dir=folder) as tmp:
        hf = convert.save_for_conversion(merged, base_model.hf_folder(ws.llm), Path(tmp))
        full = convert.model_to_gguf(hf, folder / "model-f32.gguf.part", name=ws.llm.name)
    check = compare_logits(full, merged, ids)
    path = folder / f"model-{quant}.gguf"
    if quant == "F32":
        full.replace(path)
    else:
        quantize(full, folder / f"model-{quant}.gguf.tmp", quant).replace(path)
        full.unlink()
    quantized = compare_logits(path, merged, ids) if quant != "F32" else check
    return path, ExportMetrics(quantized, check, path.stat().st_size)
