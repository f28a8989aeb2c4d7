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
    """``on_gpu(method, quantize)``: the David workspace training on CUDA (its own frozen
    config untouched); the active export is put back afterwards."""
    active = david.ws.store.account("david").active_export
    yield lambda method, quantize: david.ws.with_config(training={
        "device": "cuda", "max_steps": 3, "mask_examples": 4, "method": method,
        "quantize": quantize,
    })  # fmt: skip
    david.ws.store.set_active_export("david", active)


@pytest.mark.parametrize(
    ("method", "quantize"), [("lora", "none"), ("rosa", "none"), ("lora", "nf4"), ("rosa", "nf4")]
)
def test_trains_on_the_gpu_and_exports(david, on_gpu, method, quantize):
    from training import export, finetune, methods

    ws = on_gpu(method, quantize)
    trained = finetune.train(ws, "david", force=True)
    m = trained.metrics
    assert m.device == "cuda" and m.quantize == quantize and m.steps == 3
    assert m.dtype == ("bfloat16" if torch.cuda.is_bf16_supported() else "float32")
    assert all(0 < loss < 10 for loss in m.losses) and m.peak_gpu_mb > 0
    assert methods.method_of(trained.adapter) == method
    # The adapter trained over a bf16 or 4-bit base exports merged into the float32 base.
    exported = export.export(ws, "david", "Q8_0", train_run=trained.run_id)
    assert exported.metrics.check_f32.top1_agreement_clear == 1.0
