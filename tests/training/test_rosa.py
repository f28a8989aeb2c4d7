"""RoSA's logic on a tiny Llama (seconds, no shared data): gradient masks, the sparse
forward, save/load, merging, and that both parts train. The embedded model runs RoSA end
to end in test_methods.py."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")


def tiny(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )  # fmt: skip
    return LlamaForCausalLM(config)


def config(**overrides):
    from panza_core.config import TrainingConfig

    values = {"method": "rosa", "rank": 4, "alpha": 8, "dropout": 0.0, "density": 0.05}
    return TrainingConfig(**{**values, **overrides})


def batches(n: int = 3):
    generator = torch.Generator().manual_seed(1)
    return [torch.randint(0, 64, (1, 12), generator=generator) for _ in range(n)]


def loss_fn(model, ids):
    return model(input_ids=ids, labels=ids).loss


def test_masks_are_the_largest_accumulated_squared_weight_gradients():
    from training import methods
    from training.methods import rosa

    reference = tiny()
    targets = {n: m for n, m in reference.named_modules()
               if isinstance(m, torch.nn.Linear) and not n.endswith("lm_head")}  # fmt: skip
    fisher = {n: torch.zeros_like(m.weight) for n, m in targets.items()}
    for ids in batches():
        reference.zero_grad()
        loss_fn(reference, ids).backward()
        for name, module in targets.items():
            fisher[name] += module.weight.grad**2
    from peft import get_peft_model

    peft_model = get_peft_model(tiny(), methods.lora_config(config()))
    masks = rosa.gradient_masks(peft_model, batches(), loss_fn, density=0.05)
    assert set(masks) == set(targets) and len(masks) == 14  # 7 linears per block
    for name, indices in masks.items():
        keep = int(0.05 * fisher[name].numel())
        expected = torch.topk(fisher[name].flatten(), keep).indices.sort().values
        overlap = len(set(indices.tolist()) & set(expected.tolist())) / keep
        assert len(indices) == keep and overlap >= 0.95, name  # float ties aside
    with pytest.raises(ValueError, match="density"):
        rosa.gradient_masks(peft_model, batches(), loss_fn, density=0)


def prepared(seed: int = 0):
    from training import methods

    trainable = methods.prepare(config(), tiny(seed), batches, loss_fn)
    with torch.no_grad():  # as if trained: non-zero LoRA B and sparse values
        for name, p in trainable.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
        for value in trainable.outside.parameters():
            value.normal_(0, 0.05)
    return trainable


def test_sparse_part_adds_exactly_its_dense_matrix():
    trainable = prepared()
    ids = batches(1)[0]
    with torch.no_grad():
        hooked = trainable.model(input_ids=ids).logits
        trainable.outside.remove()
        plain = trainable.model(input_ids=ids).logits
    assert not torch.allclose(hooked, plain)
    layer = trainable.model.base_model.model.model.layers[0].self_attn.q_proj
    delta = trainable.outside.deltas["model.layers.0.self_attn.q_proj"]
    x = torch.randn(3, 32)
    assert torch.allclose(delta.apply(x), x @ delta.dense().T, atol=1e-6)
    assert delta.dense().count_nonzero() <= len(delta.indices) == int(0.05 * 32 * 32)
    assert layer.base_layer.weight.shape == delta.shape


def test_save_load_and_merge_give_the_same_model(tmp_path):
    from training import methods

    trainable = prepared()
    ids = batches(1)[0]
    with torch.no_grad():
        expected = trainable.model(input_ids=ids).logits
    trainable.save(tmp_path, tokenizer=None)
    assert methods.method_of(tmp_path) == "rosa"
    merged = methods.load_merged(tiny(), tmp_path)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, expected, atol=1e-5)


def test_both_parts_train():
    from training import methods

    trainable = methods.prepare(config(), tiny(), batches, loss_fn)
    optimizer = torch.optim.AdamW(trainable.parameters, lr=1e-2)
    ids = batches(1)[0]
    first = None
    for _ in range(8):
        loss = loss_fn(trainable.model, ids)
        first = first if first is not None else loss.item()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert loss.item() < first
    assert all(value.abs().sum() > 0 for value in trainable.outside.parameters())
    b = [p for n, p in trainable.model.named_parameters() if "lora_B" in n]
    assert all(p.abs().sum() > 0 for p in b)


def test_a_damaged_sparse_file_is_named(tmp_path):
    from panza_core.errors import CheckpointError
    from training import methods
    from training.methods import rosa

    prepared().save(tmp_path, tokenizer=None)
    (tmp_path / rosa.SPARSE_FILE).write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="rosa_sparse"):
        methods.load_merged(tiny(), tmp_path)


def test_placement_rules():
    from panza_core.config import Config
    from panza_core.errors import ConfigError, ModelError
    from training import device

    assert device.pick(config(), cuda=False, bf16=False) == device.Placement(
        "cpu", "float32", "none", False
    )
    assert device.pick(config(), cuda=True, bf16=True) == device.Placement(
        "cuda", "bfloat16", "none", True
    )
    assert device.pick(config(quantize="nf4"), cuda=True, bf16=False).dtype == "float32"
    assert device.pick(config(quantize="nf4"), cuda=False, bf16=False) == device.Placement(
        "cpu", "float32", "nf4", False
    )
    with pytest.raises(ModelError, match="full"):
        device.pick(config(method="full", quantize="nf4"), cuda=True, bf16=True)
    with pytest.raises(ModelError, match="cuda"):
        device.pick(config(device="cuda"), cuda=False, bf16=False)
    # A value outside the choices never gets here: the config refuses it when read.
    with pytest.raises(ConfigError, match="quantize = 'int3'; choose one of none, nf4"):
        Config().with_(training={"quantize": "int3"})
