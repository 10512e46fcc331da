"""What one Transformer (`scaling.models.transformer`) costs: parameter counts and training FLOPs
per token, the functions its registry entry hands to training, logging and sweep planning.

Kept apart from the model code because these are the formulas papers quote (Kaplan et al. 2020,
Hoffmann et al. 2022) and tests check them by hand. FLOP conventions differ across the literature
and move the fitted exponent (Porian et al. 2024), so every convention in `registry.CONVENTIONS` is
computed and the caller picks one. Other families count themselves in their own files.

Letters: D d_model, L n_layers, H n_heads, h head_dim, F MLP hidden width, V vocab_size, S seq_len.
"""

from typing import TYPE_CHECKING

from scaling.models.layers import norm_params
from scaling.models.registry import CONVENTIONS

if TYPE_CHECKING:
  from scaling.models.transformer import TransformerConfig

__all__ = ["CONVENTIONS", "flops_per_token", "param_counts"]


def _mlp_matrices(cfg: "TransformerConfig") -> int:
  """Weight matrices of one MLP: gelu has in [D, F] and out [F, D]; swiglu adds a gate [D, F]."""
  return 3 if cfg.mlp == "swiglu" else 2


def param_counts(cfg: "TransformerConfig") -> dict[str, int]:
  """Counts the float32 parameters of `scaling.models.transformer` (no linear biases).

  Returns `total` (every parameter), `embedding` (token embedding [V, D], the learned position
  embedding [S, D] when position == "learned", and the output kernel [D, V] when embeddings are
  untied) and `non_embedding` = total - embedding. `non_embedding` is Kaplan et al. 2020's N
  (sec. 2.1): it excludes embedding matrices, which makes their laws cleaner, and counts an untied
  output matrix with the embeddings, since it is the same kind of [vocab x D] table. Norm scales
  and biases are included in N; they are O(L·D) against O(L·D²) for the matrices.
  """
  d, d_attn = cfg.d_model, cfg.n_heads * cfg.head_dim
  token = cfg.vocab_size * d
  position = cfg.seq_len * d if cfg.position == "learned" else 0
  output = 0 if cfg.tie_embeddings else d * cfg.vocab_size
  # Per layer: two norms; q, k, v [D, H, h] and out [H, h, D]; the MLP matrices.
  per_layer = 2 * norm_params(cfg) + 4 * d * d_attn + _mlp_matrices(cfg) * d * cfg.hidden_dim
  non_embedding = cfg.n_layers * per_layer + norm_params(cfg)  # + the final norm
  embedding = token + position + output
  return {
      "total": embedding + non_embedding,
      "embedding": embedding,
      "non_embedding": non_embedding,
  }


def _chinchilla_forward_per_sequence(cfg: "TransformerConfig") -> int:
  """Forward FLOPs of one sequence, Hoffmann et al. 2022 App. F (a multiply-add counts 2)."""
  d, s, v, heads = cfg.d_model, cfg.seq_len, cfg.vocab_size, cfg.n_heads
  d_attn = heads * cfg.head_dim
  embeddings = 2 * s * v * d  # the lookup counted as a one-hot matmul
  attention = (
      2 * 3 * s * d * d_attn  # q, k, v projections
      + 2 * s * s * d_attn  # logits q·kᵀ
      + 3 * heads * s * s  # softmax
      + 2 * s * s * d_attn  # softmax-weighted sum of values
      + 2 * s * d_attn * d  # output projection
  )
  # gelu: 2·S·(D·F + F·D); swiglu: 2·S·3·D·F, its gate is a third [D, F] matrix.
  mlp = 2 * s * _mlp_matrices(cfg) * d * cfg.hidden_dim
  logits = 2 * s * d * v
  return embeddings + cfg.n_layers * (attention + mlp) + logits


def flops_per_token(cfg: "TransformerConfig") -> dict[str, float]:
  """Training FLOPs (forward + backward) per token, one entry per name in `CONVENTIONS`.

  Training is 3 × forward under every convention (the backward pass costs twice the forward:
  gradients with respect to activations and to weights). A multiply-add is 2 FLOPs. None counts
  norms, rotary embeddings, residual adds, the loss or the optimizer update, and none halves causal
  attention.

  - "kaplan": Kaplan et al. 2020 sec. 2.1 (Table 1): forward 2·N + 2·L·S·d_attn with
    N = non_embedding and d_attn = H·h, so 6·N + 6·L·S·d_attn. Counts every non-embedding matmul and
    the context-dependent attention (qkᵀ and the weighted values); excludes embedding and logits.
  - "chinchilla": Hoffmann et al. 2022 App. F: embeddings (as a one-hot matmul), q/k/v/output
    projections, qkᵀ, softmax, weighted values, MLP (three matrices for swiglu) and final logits,
    whether or not embeddings are tied; per sequence, divided by S.
  - "6n": 6·N with N = non_embedding, the C = 6·N·D approximation that many fits assume (Kaplan
    2020 sec. 2.1; Hoffmann 2022 sec. 3.3); use it to compare with those fits.
  - "6n_total": 6 × all parameters, embeddings included.
  """
  counts = param_counts(cfg)
  n = counts["non_embedding"]
  d_attn = cfg.n_heads * cfg.head_dim
  return {
      "kaplan": float(6 * n + 6 * cfg.n_layers * cfg.seq_len * d_attn),
      "chinchilla": 3 * _chinchilla_forward_per_sequence(cfg) / cfg.seq_len,
      "6n": float(6 * n),
      "6n_total": float(6 * counts["total"]),
  }
