"""Full fine-tuning: every weight trains; saved as a whole Hugging Face model folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panza_core.config import TrainingConfig
from training.methods.protocol import LossFn, MaskBatches, Trainable


class Full:
    """``Method``: all weights, float32; needs the memory of the model times four (AdamW)."""

    name = "full"
    default_lr = 5e-5
    trains_4bit = False
    gguf_adapter = False

    def prepare(
        self, config: TrainingConfig, model: Any, mask_batches: MaskBatches, loss_fn: LossFn,
        saved: dict[str, Any] | None,
    ) -> Trainable:  # fmt: skip
        model.requires_grad_(True)
        return Trainable(self, model, list(model.parameters()))

    def save(self, trainable: Trainable, folder: Path, tokenizer: Any) -> None:
        trainable.model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    def load_merged(self, base_model: Any, folder: Path) -> Any:
        import torch
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(
            folder, dtype=torch.float32, local_files_only=True
        ).eval()
