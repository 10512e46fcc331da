"""Our Transformer's parameters under Hugging Face names: GPT-2 style as `GPT2LMHeadModel`, Llama
style as `LlamaForCausalLM`, with the config.json that makes transformers compute the same function.

Shape letters: D d_model, H heads, K head dim, F MLP width, V vocab, P positions (seq_len).

Only a faithful counterpart is exported: learned positions with LayerNorm and the GELU MLP are
GPT-2 (its GELU is the tanh approximation, jax.nn.gelu's default: "gelu_new"; its Conv1D stores
weights [in, out] as ours, with zero biases since our projections have none); rotary positions
with RMSNorm and SwiGLU are Llama (nn.Linear stores [out, in]: transposed; our rotary rotates the
two halves of each head, as Llama's `rotate_half`, with the same 10000^(-2i/K) frequencies, so q
and k need no permutation). Any other mix is refused by name.
"""

import numpy as np

from scaling.errors import InputError

ROPE_THETA = 10_000.0  # scaling.models.transformer.rotary_tables


def family(cfg) -> str:
  """"gpt2" or "llama" for a model config, else an InputError naming the option in the way."""
  if cfg.arch != "transformer":
    raise InputError(f"model.arch={cfg.arch} has no Hugging Face counterpart (only the "
                     f"Transformer family exports)")
  wanted = {"learned": ("gpt2", {"norm": "layernorm", "mlp": "gelu"}),
            "rotary": ("llama", {"norm": "rmsnorm", "mlp": "swiglu"})}
  name, needs = wanted[cfg.position]
  for key, value in needs.items():
    if getattr(cfg, key) != value:
      style = "GPT-2" if name == "gpt2" else "Llama"
      raise InputError(f"model.{key}={getattr(cfg, key)} with model.position={cfg.position} has no "
                       f"faithful Hugging Face counterpart ({style} has {key}={value})")
  return name


def _blocks(model, cfg) -> list[dict]:
  """Per layer, its parameters as float32 numpy arrays (scanned layers are unstacked)."""
  blocks, stacked = model.blocks, cfg.scan_layers
  layers = []
  for i in range(cfg.n_layers):
    block = blocks if stacked else blocks[i]
    def get(variable, i=i):
      value = np.asarray(variable[...], np.float32)
      return value[i] if stacked else value
    params = {"wqkv": get(block.attn.wqkv), "wo": get(block.attn.wo),
              "w_out": get(block.mlp.w_out), "attn_norm": get(block.attn_norm.scale),
              "mlp_norm": get(block.mlp_norm.scale)}
    if hasattr(block.mlp, "w_gate_up"):
      params["w_gate_up"] = get(block.mlp.w_gate_up)
    else:
      params["w_in"] = get(block.mlp.w_in)
    if getattr(block.attn_norm, "bias", None) is not None:
      params["attn_norm_bias"] = get(block.attn_norm.bias)
      params["mlp_norm_bias"] = get(block.mlp_norm.bias)
    layers.append(params)
  return layers


def _head(model, cfg) -> tuple[np.ndarray, np.ndarray | None]:
  """embedding [V, D], and lm_head [V, D] (None when tied)."""
  embedding_VxD = np.asarray(model.embedding[...], np.float32)
  if cfg.tie_embeddings:
    return embedding_VxD, None
  return embedding_VxD, np.ascontiguousarray(np.asarray(model.unembedding[...], np.float32).T)


def gpt2(model, cfg, eos_id: int) -> tuple[dict, dict]:
  """(config.json, tensors) of a GPT2LMHeadModel computing `model`."""
  D, H, K, F = cfg.d_model, cfg.n_heads, cfg.head_dim, cfg.hidden_dim
  embedding_VxD, head_VxD = _head(model, cfg)
  tensors = {"transformer.wte.weight": embedding_VxD,
             "transformer.wpe.weight": np.asarray(model.position_embedding[...], np.float32),
             "transformer.ln_f.weight": np.asarray(model.final_norm.scale[...], np.float32),
             "transformer.ln_f.bias": np.asarray(model.final_norm.bias[...], np.float32)}
  if head_VxD is not None:
    tensors["lm_head.weight"] = head_VxD
  for i, p in enumerate(_blocks(model, cfg)):
    prefix = f"transformer.h.{i}."
    tensors.update({
        prefix + "ln_1.weight": p["attn_norm"], prefix + "ln_1.bias": p["attn_norm_bias"],
        prefix + "ln_2.weight": p["mlp_norm"], prefix + "ln_2.bias": p["mlp_norm_bias"],
        # [D, 3, H, K] -> [D, 3·H·K]: GPT-2 splits c_attn's output into q, k, v, then into heads.
        prefix + "attn.c_attn.weight": p["wqkv"].reshape(D, 3 * H * K),
        prefix + "attn.c_attn.bias": np.zeros(3 * D, np.float32),
        prefix + "attn.c_proj.weight": p["wo"].reshape(H * K, D),
        prefix + "attn.c_proj.bias": np.zeros(D, np.float32),
        prefix + "mlp.c_fc.weight": p["w_in"], prefix + "mlp.c_fc.bias": np.zeros(F, np.float32),
        prefix + "mlp.c_proj.weight": p["w_out"], prefix + "mlp.c_proj.bias": np.zeros(D, np.float32),
    })
  config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
            "vocab_size": cfg.vocab_size, "n_positions": cfg.seq_len, "n_embd": D,
            "n_layer": cfg.n_layers, "n_head": H, "n_inner": F, "activation_function": "gelu_new",
            "layer_norm_epsilon": 1e-5, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
            "scale_attn_weights": True, "initializer_range": cfg.init_std,
            "tie_word_embeddings": cfg.tie_embeddings, "bos_token_id": eos_id,
            "eos_token_id": eos_id, "torch_dtype": "float32"}
  return config, tensors


def llama(model, cfg, eos_id: int) -> tuple[dict, dict]:
  """(config.json, tensors) of a LlamaForCausalLM computing `model`."""
  D, H, K, F = cfg.d_model, cfg.n_heads, cfg.head_dim, cfg.hidden_dim
  embedding_VxD, head_VxD = _head(model, cfg)
  tensors = {"model.embed_tokens.weight": embedding_VxD,
             "model.norm.weight": np.asarray(model.final_norm.scale[...], np.float32)}
  if head_VxD is not None:
    tensors["lm_head.weight"] = head_VxD
  for i, p in enumerate(_blocks(model, cfg)):
    prefix = f"model.layers.{i}."
    q_DxHK, k_DxHK, v_DxHK = (p["wqkv"][:, c].reshape(D, H * K) for c in range(3))
    tensors.update({
        prefix + "input_layernorm.weight": p["attn_norm"],
        prefix + "post_attention_layernorm.weight": p["mlp_norm"],
        prefix + "self_attn.q_proj.weight": q_DxHK.T, prefix + "self_attn.k_proj.weight": k_DxHK.T,
        prefix + "self_attn.v_proj.weight": v_DxHK.T,
        prefix + "self_attn.o_proj.weight": p["wo"].reshape(H * K, D).T,
        prefix + "mlp.gate_proj.weight": p["w_gate_up"][:, 0].T,
        prefix + "mlp.up_proj.weight": p["w_gate_up"][:, 1].T,
        prefix + "mlp.down_proj.weight": p["w_out"].T,
    })
  config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "vocab_size": cfg.vocab_size, "hidden_size": D, "intermediate_size": F,
            "num_hidden_layers": cfg.n_layers, "num_attention_heads": H,
            "num_key_value_heads": H, "head_dim": K, "hidden_act": "silu",
            "max_position_embeddings": cfg.seq_len, "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_type": "default", "rope_theta": ROPE_THETA},
            "rope_theta": ROPE_THETA, "attention_bias": False, "mlp_bias": False,
            "attention_dropout": 0.0, "initializer_range": cfg.init_std,
            "tie_word_embeddings": cfg.tie_embeddings, "bos_token_id": eos_id,
            "eos_token_id": eos_id, "torch_dtype": "float32"}
  return config, tensors


def convert(model, cfg, eos_id: int) -> tuple[dict, dict]:
  """(config.json, {name: contiguous float32 array}) for the family `family(cfg)` names."""
  config, tensors = {"gpt2": gpt2, "llama": llama}[family(cfg)](model, cfg, eos_id)
  return config, {name: np.ascontiguousarray(t, np.float32) for name, t in tensors.items()}
