"""RoSA (Nikdan et al., arXiv 2401.04679): LoRA plus a sparse adapter on supports chosen
from gradients (``training.rosa``); saved as the PEFT folder plus
``rosa_sparse.safetensors``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panza_core.config import TrainingConfig
from training import rosa
from training.methods.lora import Lora
from training.methods.protocol import LossFn, MaskBatches, Trainable


class Rosa(Lora):
    """``Method``: LoRA's low-rank factors plus sparse adapters; merged for export
    (llama.cpp adapters carry no sparse part)."""

    name = "rosa"
    gguf_adapter = False

    def prepare(
        self, config: TrainingConfig, model: Any, mask_batches: MaskBatches, loss_fn: LossFn,
        supports: dict[str, Any] | None,
    ) -> Trainable:  # fmt: skip
        low_rank = super().prepare(config, model, mask_batches, loss_fn, supports)
        peft_model = low_rank.model
        if supports is None:
            peft_model.train()
            supports = rosa.gradient_masks(peft_model, mask_batches(), loss_fn, config.density)
        sparse = rosa.attach(peft_model, supports, config.density)
        return Trainable(self, peft_model, sparse, low_rank.parameters + sparse.parameters())

    def save(self, trainable: Trainable, folder: Path, tokenizer: Any) -> None:
        super().save(trainable, folder, tokenizer)
        if trainable.sparse:
            trainable.sparse.save(folder)

    def load_merged(self, base_model: Any, folder: Path) -> Any:
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(base_model, folder)
        rosa.load(peft_model, folder).merge()
        return peft_model.merge_and_unload().eval()
