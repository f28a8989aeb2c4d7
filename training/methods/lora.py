"""LoRA (Hu et al., arXiv 2106.09685) with PEFT on ``[training] target_modules``: low-rank
factors beside the frozen base weights, saved as a PEFT adapter folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panza_core.config import TrainingConfig
from training.methods.protocol import LossFn, MaskBatches, Trainable


def lora_config(config: TrainingConfig) -> Any:
    """The PEFT ``LoraConfig`` from ``[training]`` (rank, alpha, dropout, target modules)."""
    from peft import LoraConfig

    targets: Any = config.target_modules
    if targets != "all-linear":
        targets = [name.strip() for name in targets.split(",") if name.strip()]
    return LoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
        target_modules=targets, task_type="CAUSAL_LM",
    )  # fmt: skip


class Lora:
    """``Method``: PEFT LoRA; the adapter merges into the base for a GGUF, or exports as a
    llama.cpp LoRA adapter."""

    name = "lora"
    default_lr = 1e-3
    trains_4bit = True
    gguf_adapter = True

    def prepare(
        self, config: TrainingConfig, model: Any, mask_batches: MaskBatches, loss_fn: LossFn,
        saved: dict[str, Any] | None,
    ) -> Trainable:  # fmt: skip
        from peft import get_peft_model

        peft_model = get_peft_model(model, lora_config(config))
        params = [p for p in peft_model.parameters() if p.requires_grad]
        return Trainable(self, peft_model, params)

    def save(self, trainable: Trainable, folder: Path, tokenizer: Any) -> None:
        trainable.model.save_pretrained(folder)

    def load_merged(self, base_model: Any, folder: Path) -> Any:
        from peft import PeftModel

        return PeftModel.from_pretrained(base_model, folder).merge_and_unload().eval()
