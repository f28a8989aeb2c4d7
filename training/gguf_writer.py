"""Writing a Llama-architecture torch model, or a LoRA adapter of one, as a GGUF file.

Uses the ``gguf`` package (GGUFWriter, TensorNameMap, SpecialVocab) the way llama.cpp's own
``convert_hf_to_gguf.py`` does for ``LlamaForCausalLM``:
- q/k projection rows are permuted into llama.cpp's rotary layout (transformers un-permutes
  them when it loads a GGUF, so they must be permuted back);
- ``lm_head`` is skipped when it is tied to the token embeddings;
- the vocabulary comes from ``tokenizer.json`` (token types from its ``added_tokens``: special
  ones are CONTROL, the rest USER_DEFINED), and the pre-tokenizer type and add-BOS flag are
  set explicitly, since llama.cpp cannot infer them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from panza_tui.core.errors import ModelError

ARCH = "llama"


def permute(weights: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """Reorder the rows of a q or k projection (shape (n_head*head_dim, ...)) for llama.cpp.

    HF stores rotary halves as [x0..x_{d/2}, x_{d/2}..x_d]; GGML's rope wants them interleaved.
    """
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    shape = weights.shape
    return (
        weights.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:])
        .swapaxes(1, 2)
        .reshape(shape)
    )


def _check_llama(config: Any) -> None:
    if getattr(config, "model_type", None) not in {"llama", "mistral"}:
        raise ModelError(
            f"GGUF export supports Llama-architecture models; this one is {config.model_type!r}"
        )


def _tensor_name(name_map: Any, hf_name: str) -> str:
    name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if name is None:
        raise ModelError(f"no GGUF name for tensor {hf_name!r}")
    return name


def _rows_permuted(hf_name: str, config: Any, data: np.ndarray) -> np.ndarray:
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    if hf_name.endswith("q_proj.weight"):
        return permute(data, heads, heads)
    if hf_name.endswith("k_proj.weight"):
        return permute(data, heads, kv_heads)
    return data


def _add_hparams(writer: Any, config: Any, file_type: int, name: str) -> None:
    import gguf

    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    writer.add_rope_dimension_count(head_dim)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    rope = getattr(config, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    writer.add_rope_freq_base(float(theta))
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(file_type)


def _add_vocab(writer: Any, folder: Path, vocab_size: int, pre: str, add_bos: bool) -> None:
    import gguf

    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    model = spec.get("model", {})
    if model.get("type") != "BPE":
        raise ModelError(f"{folder}: GGUF export supports BPE tokenizers, not {model.get('type')}")
    tokens = [f"[PAD{i}]" for i in range(vocab_size)]
    types = [gguf.TokenType.UNUSED] * vocab_size
    for text, index in model["vocab"].items():
        if index < vocab_size:
            tokens[index], types[index] = text, gguf.TokenType.NORMAL
    for added in spec.get("added_tokens", []):
        index = added["id"]
        if index < vocab_size:
            tokens[index] = added["content"]
            types[index] = (
                gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
            )
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=vocab_size)
    special.add_special_token.pop("bos", None)  # we set add_bos explicitly below
    special.add_to_gguf(writer, quiet=True)
    writer.add_add_bos_token(add_bos)


def tokenizer_settings(source_gguf: Path | None, folder: Path) -> tuple[str, bool]:
    """(llama.cpp pre-tokenizer type, add BOS) for the exported vocabulary.

    Taken from the base GGUF when there is one (exact). For a Hugging Face folder it is
    read off tokenizer.json: a plain byte-level BPE is llama.cpp's ``gpt-2``; anything else
    gets ``default``. The export's round-trip test compares both tokenizers.
    """
    if source_gguf is not None:
        from gguf import GGUFReader

        fields = GGUFReader(source_gguf).fields
        pre = fields.get("tokenizer.ggml.pre")
        bos = fields.get("tokenizer.ggml.add_bos_token")
        return (
            bytes(pre.parts[pre.data[0]]).decode() if pre else "default",
            bool(bos.parts[bos.data[0]][0]) if bos else False,
        )
    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    pre_tokenizer = spec.get("pre_tokenizer") or {}
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.exists() else {}
    add_bos = bool(config.get("add_bos_token", False))
    return ("gpt-2" if pre_tokenizer.get("type") == "ByteLevel" else "default"), add_bos


def _tensors(model: Any) -> Iterator[tuple[str, np.ndarray]]:
    tied = getattr(model.config, "tie_word_embeddings", False)
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue
        if "rotary_emb" in hf_name:
            continue
        yield hf_name, tensor.detach().float().cpu().numpy()


def write_model(
    model: Any, tokenizer_folder: Path, out: Path, *, f16: bool = False, name: str = "panza",
    source_gguf: Path | None = None,
) -> Path:  # fmt: skip
    """Write a (merged) Llama model as GGUF, F32 or F16 (1-D tensors always F32).

    Raises ``ModelError`` for unsupported architectures or tokenizers. Returns ``out``.
    """
    import gguf

    config = model.config
    _check_llama(config)
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    file_type = gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32
    writer = gguf.GGUFWriter(str(out), ARCH)
    _add_hparams(writer, config, file_type, name)
    pre, add_bos = tokenizer_settings(source_gguf, tokenizer_folder)
    _add_vocab(writer, tokenizer_folder, config.vocab_size, pre, add_bos)
    for hf_name, data in _tensors(model):
        data = _rows_permuted(hf_name, config, data)
        if f16 and data.ndim > 1:
            data = data.astype(np.float16)
        writer.add_tensor(_tensor_name(name_map, hf_name), data)
    _finish(writer)
    return out


def write_lora(peft_model: Any, out: Path, alpha: float, name: str = "panza-adapter") -> Path:
    """Write a PEFT LoRA as a llama.cpp GGUF adapter (``*.lora_a``/``*.lora_b``, F32).

    ``lora_a`` has torch shape (r, in) and ``lora_b`` (out, r); q/k ``lora_b`` rows are
    permuted like the base weights. llama.cpp scales by ``adapter.lora.alpha / r``.
    """
    import gguf

    config = peft_model.base_model.model.config
    _check_llama(config)
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    writer = gguf.GGUFWriter(str(out), ARCH)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_name(name)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    count = 0
    for module_name, module in peft_model.named_modules():
        if not hasattr(module, "lora_A") or "default" not in getattr(module, "lora_A", {}):
            continue
        hf_name = module_name.split("base_model.model.", 1)[-1] + ".weight"
        a = module.lora_A["default"].weight.detach().float().cpu().numpy()
        b = module.lora_B["default"].weight.detach().float().cpu().numpy()
        b = _rows_permuted(hf_name, config, b)
        base = _tensor_name(name_map, hf_name)
        writer.add_tensor(f"{base}.lora_a", a)
        writer.add_tensor(f"{base}.lora_b", b)
        count += 1
    if count == 0:
        raise ModelError("the adapter has no LoRA layers to export")
    _finish(writer)
    return out


def _finish(writer: Any) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
