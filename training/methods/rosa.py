"""RoSA (Nikdan et al., arXiv 2401.04679): LoRA plus a sparse adapter on supports chosen
from gradients (``training.rosa``); saved as the PEFT folder plus
``rosa_sparse.safetensors``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panza_tui.core.config import TrainingConfig
from training import rosa
from training.methods.base import LossFn, MaskBatches, Trainable
from training.methods.lora import lora_config


class Rosa:
    """``Method``: low-rank plus sparse adapters; merged for export (llama.cpp adapters carry
    no sparse part)."""

    name = "rosa"
    default_lr = 1e-3
    trains_4bit = True
    gguf_adapter = False

    def prepare(
        self, config: TrainingConfig, model: Any, mask_batches: MaskBatches, loss_fn: LossFn,
        supports: dict[str, Any] | None,
    ) -> Trainable:  # fmt: skip
        from peft import get_peft_model

        peft_model = get_peft_model(model, lora_config(config))
        if supports is None:
            peft_model.train()
            supports = rosa.gradient_masks(peft_model, mask_batches(), loss_fn, config.density)
        sparse = rosa.attach(peft_model, supports, config.density)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        return Trainable(self, peft_model, sparse, params + sparse.parameters())

    def save(self, trainable: Trainable, folder: Path, tokenizer: Any) -> None:
        trainable.model.save_pretrained(folder)
        if trainable.sparse:
            trainable.sparse.save(folder)

    def load_merged(self, base_model: Any, folder: Path) -> Any:
        from peft import PeftModel

        peft_model = PeftModel.from_pretrained(base_model, folder)
        rosa.load(peft_model, folder).merge()
        return peft_model.merge_and_unload().eval()
