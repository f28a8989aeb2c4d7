"""The GPU paths on the embedded model: bf16 LoRA and RoSA, and LoRA/RoSA on a 4-bit NF4
base (bitsandbytes). Skipped where torch sees no CUDA device; the CPU tests cover the logic
(placement rules in test_rosa.py, the loop and methods in test_methods.py)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture()
def on_gpu(david):
    t = david.ws.config.training
    saved = (t.method, t.max_steps, t.device, t.quantize, t.mask_examples)
    active = david.ws.store.account("david")["active_adapter"]
    t.device, t.max_steps, t.mask_examples = "cuda", 3, 4
    yield t
    t.method, t.max_steps, t.device, t.quantize, t.mask_examples = saved
    david.ws.store.set_active_adapter("david", active)


@pytest.mark.parametrize(
    ("method", "quantize"), [("lora", "none"), ("rosa", "none"), ("lora", "nf4"), ("rosa", "nf4")]
)
def test_trains_on_the_gpu_and_exports(david, on_gpu, method, quantize):
    from training import export, finetune, methods

    if quantize == "nf4":
        pytest.importorskip("bitsandbytes")
    on_gpu.method, on_gpu.quantize = method, quantize
    trained = finetune.train(david.ws, "david", force=True)
    m = trained.metrics
    assert m["device"] == "cuda" and m["quantize"] == quantize and m["steps"] == 3
    assert m["dtype"] == ("bfloat16" if torch.cuda.is_bf16_supported() else "float32")
    assert all(0 < loss < 10 for loss in m["losses"]) and m["peak_gpu_mb"] > 0
    assert methods.method_of(trained.adapter) == method
    # The adapter trained over a bf16 or 4-bit base exports merged into the float32 base.
    exported = export.export(david.ws, "david", "Q8_0", train_run=trained.run_id)
    assert exported.metrics["check_f32"]["top1_agreement_clear"] == 1.0
