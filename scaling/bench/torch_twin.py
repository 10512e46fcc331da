"""The same Transformer written plainly in PyTorch (eager, float32): the side-by-side of `scaling bench`.

It mirrors `scaling.models.transformer` option for option (norm, MLP, positions, tied embeddings, no
biases in linear layers) and trains with AdamW under the same decay mask, clipping and learning-rate
schedule. It can start from our initial weights, so its first loss equals ours: the two do the same
work. PyTorch is a benchmark-only extra; nothing else in the package imports this module.

Shape letters as in the JAX model: B batch, L length, D d_model, H heads, K head dim, V vocab.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from scaling.models.transformer import TransformerConfig
from scaling.train.config import TrainConfig


def _norm(cfg: TransformerConfig) -> nn.Module:
  if cfg.norm == "layernorm":
    return nn.LayerNorm(cfg.d_model, eps=1e-5)
  return nn.RMSNorm(cfg.d_model, eps=1e-6)


def _linear(d_in: int, d_out: int, std: float) -> nn.Linear:
  layer = nn.Linear(d_in, d_out, bias=False)
  nn.init.normal_(layer.weight, std=std)
  return layer


def rotary(x_BxLxHxK, sin_Lx1xK, cos_Lx1xK):
  """Rotary embedding on the two halves of each head, as `scaling.models.transformer.rotary`."""
  x1, x2 = x_BxLxHxK.chunk(2, dim=-1)
  return torch.cat([x1 * cos_Lx1xK - x2 * sin_Lx1xK, x2 * cos_Lx1xK + x1 * sin_Lx1xK], dim=-1)


class Attention(nn.Module):

  def __init__(self, cfg: TransformerConfig):
    super().__init__()
    self.cfg = cfg
    d, d_attn = cfg.d_model, cfg.n_heads * cfg.head_dim
    self.wq = _linear(d, d_attn, cfg.init_std)
    self.wk = _linear(d, d_attn, cfg.init_std)
    self.wv = _linear(d, d_attn, cfg.init_std)
    self.wo = _linear(d_attn, d, cfg.init_std / math.sqrt(2 * cfg.n_layers))

  def forward(self, x_BxLxD, sin_Lx1xK, cos_Lx1xK):
    B, L, _ = x_BxLxD.shape
    H, K = self.cfg.n_heads, self.cfg.head_dim
    q_BxLxHxK = self.wq(x_BxLxD).view(B, L, H, K)
    k_BxLxHxK = self.wk(x_BxLxD).view(B, L, H, K)
    v_BxLxHxK = self.wv(x_BxLxD).view(B, L, H, K)
    if self.cfg.position == "rotary":
      q_BxLxHxK = rotary(q_BxLxHxK, sin_Lx1xK, cos_Lx1xK)
      k_BxLxHxK = rotary(k_BxLxHxK, sin_Lx1xK, cos_Lx1xK)
    out_BxHxLxK = F.scaled_dot_product_attention(
        q_BxLxHxK.transpose(1, 2), k_BxLxHxK.transpose(1, 2), v_BxLxHxK.transpose(1, 2),
        is_causal=True)
    return self.wo(out_BxHxLxK.transpose(1, 2).reshape(B, L, H * K))


class Mlp(nn.Module):

  def __init__(self, cfg: TransformerConfig):
    super().__init__()
    self.swiglu = cfg.mlp == "swiglu"
    d, f = cfg.d_model, cfg.hidden_dim
    self.w_in = _linear(d, f, cfg.init_std)
    if self.swiglu:
      self.w_gate = _linear(d, f, cfg.init_std)
    self.w_out = _linear(f, d, cfg.init_std / math.sqrt(2 * cfg.n_layers))

  def forward(self, x_BxLxD):
    h_BxLxF = self.w_in(x_BxLxD)
    if self.swiglu:
      h_BxLxF = F.silu(self.w_gate(x_BxLxD)) * h_BxLxF
    else:
      h_BxLxF = F.gelu(h_BxLxF, approximate="tanh")  # jax.nn.gelu's default
    return self.w_out(h_BxLxF)


class Block(nn.Module):

  def __init__(self, cfg: TransformerConfig):
    super().__init__()
    self.attn_norm = _norm(cfg)
    self.attn = Attention(cfg)
    self.mlp_norm = _norm(cfg)
    self.mlp = Mlp(cfg)

  def forward(self, x_BxLxD, sin_Lx1xK, cos_Lx1xK):
    x_BxLxD = x_BxLxD + self.attn(self.attn_norm(x_BxLxD), sin_Lx1xK, cos_Lx1xK)
    return x_BxLxD + self.mlp(self.mlp_norm(x_BxLxD))


class Transformer(nn.Module):
  """tokens_BxL (int64) -> logits_BxLxV (float32)."""

  def __init__(self, cfg: TransformerConfig):
    super().__init__()
    self.cfg = cfg
    self.embedding = nn.Embedding(cfg.vocab_size, cfg.d_model)
    nn.init.normal_(self.embedding.weight, std=cfg.init_std)
    if cfg.position == "learned":
      self.position_embedding = nn.Embedding(cfg.seq_len, cfg.d_model)
      nn.init.normal_(self.position_embedding.weight, std=cfg.init_std)
    self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
    self.final_norm = _norm(cfg)
    if not cfg.tie_embeddings:
      self.unembedding = _linear(cfg.d_model, cfg.vocab_size, cfg.init_std)
    half = cfg.head_dim // 2
    inv_freq_K = 1.0 / (10_000.0 ** (torch.arange(half, dtype=torch.float32) / half))
    angle_Lx1xK = (torch.arange(cfg.seq_len, dtype=torch.float32)[:, None] * inv_freq_K)[:, None, :]
    self.register_buffer("sin_Lx1xK", torch.sin(angle_Lx1xK), persistent=False)
    self.register_buffer("cos_Lx1xK", torch.cos(angle_Lx1xK), persistent=False)

  def forward(self, tokens_BxL):
    L = tokens_BxL.shape[1]
    x_BxLxD = self.embedding(tokens_BxL)
    if self.cfg.position == "learned":
      x_BxLxD = x_BxLxD + self.position_embedding.weight[:L]
    sin_Lx1xK, cos_Lx1xK = self.sin_Lx1xK[:L], self.cos_Lx1xK[:L]
    for block in self.blocks:
      x_BxLxD = block(x_BxLxD, sin_Lx1xK, cos_Lx1xK)
    x_BxLxD = self.final_norm(x_BxLxD)
    if self.cfg.tie_embeddings:
      return F.linear(x_BxLxD, self.embedding.weight)
    return self.unembedding(x_BxLxD)


def load_params(twin: Transformer, params: dict) -> None:
  """Copies our parameters (`nnx.to_pure_dict(state[0])` on the host, looped or scanned) into the twin.

  Our kernels are [in, out] (attention [D, 3, H, K] and [H, K, D], SwiGLU [D, 2, F]); torch's Linear
  weights are [out, in], one per projection.
  """
  cfg = twin.cfg

  def put(parameter, value):
    with torch.no_grad():
      parameter.copy_(torch.tensor(np.asarray(value, dtype=np.float32)))

  def put_norm(norm, ours):
    put(norm.weight, ours["scale"])
    if cfg.norm == "layernorm":
      put(norm.bias, ours["bias"])

  put(twin.embedding.weight, params["embedding"])
  if cfg.position == "learned":
    put(twin.position_embedding.weight, params["position_embedding"])
  if not cfg.tie_embeddings:
    put(twin.unembedding.weight, params["unembedding"].T)
  put_norm(twin.final_norm, params["final_norm"])
  stacked = 0 not in params["blocks"]  # scan_layers: one block whose leaves carry a layers axis
  for i, block in enumerate(twin.blocks):
    ours = _index(params["blocks"], i) if stacked else params["blocks"][i]
    d, d_attn = cfg.d_model, cfg.n_heads * cfg.head_dim
    for i, name in enumerate(("wq", "wk", "wv")):  # ours: one [D, 3, H, K] weight
      put(getattr(block.attn, name).weight, ours["attn"]["wqkv"][:, i].reshape(d, d_attn).T)
    put(block.attn.wo.weight, ours["attn"]["wo"].reshape(d_attn, d).T)
    if cfg.mlp == "swiglu":  # ours: gate and up stacked in one [D, 2, F] weight
      put(block.mlp.w_gate.weight, ours["mlp"]["w_gate_up"][:, 0].T)
      put(block.mlp.w_in.weight, ours["mlp"]["w_gate_up"][:, 1].T)
    else:
      put(block.mlp.w_in.weight, ours["mlp"]["w_in"].T)
    put(block.mlp.w_out.weight, ours["mlp"]["w_out"].T)
    put_norm(block.attn_norm, ours["attn_norm"])
    put_norm(block.mlp_norm, ours["mlp_norm"])


def _index(tree: dict, i: int) -> dict:
  return {k: _index(v, i) if isinstance(v, dict) else v[i] for k, v in tree.items()}


class TwinStep:
  """Twin + AdamW on one fixed batch; `step()` is one eager update, done when it returns.

  `learning_rates[t]` is the rate of step t (ours, read from our schedule; the last one repeats).
  Weight decay goes to matrices only and the global gradient norm is clipped, as in
  `scaling.train.state.optimizer`.
  """

  def __init__(self, cfg: TrainConfig, batch_BxL1: np.ndarray, learning_rates, params=None):
    torch.manual_seed(cfg.seed)
    self.model = Transformer(cfg.model)
    if params is not None:
      load_params(self.model, params)
    matrices = [p for p in self.model.parameters() if p.ndim >= 2]
    vectors = [p for p in self.model.parameters() if p.ndim < 2]
    self.optimizer = torch.optim.AdamW(
        [{"params": matrices, "weight_decay": cfg.weight_decay},
         {"params": vectors, "weight_decay": 0.0}],
        lr=float(learning_rates[0]), betas=(cfg.adam_b1, cfg.adam_b2), eps=cfg.adam_eps)
    self.grad_clip = cfg.grad_clip
    self.learning_rates = [float(lr) for lr in learning_rates]
    self.t = 0
    batch = torch.from_numpy(np.asarray(batch_BxL1, dtype=np.int64))
    self.inputs_BxL, self.targets_BxL = batch[:, :-1], batch[:, 1:].contiguous()

  def step(self) -> float:
    """One update; returns its loss."""
    for group in self.optimizer.param_groups:
      group["lr"] = self.learning_rates[min(self.t, len(self.learning_rates) - 1)]
    self.optimizer.zero_grad(set_to_none=True)
    logits_BxLxV = self.model(self.inputs_BxL)
    loss = F.cross_entropy(logits_BxLxV.reshape(-1, logits_BxLxV.shape[-1]),
                           self.targets_BxL.reshape(-1))
    loss.backward()
    if self.grad_clip > 0:
      nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
    self.optimizer.step()
    self.t += 1
    return loss.item()
