"""The train step's optimized HLO copies no [L, L] attention matrix and no [N, F] MLP activation."""

import jax
import numpy as np
from flax import nnx

from scaling.bench import layout_copies
from scaling.models import ModelConfig
from scaling.train import state as state_lib
from small_runs import build_model


def _optimized_train_hlo(cfg: ModelConfig, batch_size: int) -> str:
  graphdef, params = nnx.split(build_model(cfg))
  tokens_BxL1 = np.zeros((batch_size, cfg.seq_len + 1), np.int32)

  def loss(params):
    logits_BxLxV = nnx.merge(graphdef, params)(tokens_BxL1[:, :-1])
    return state_lib.next_token_loss(logits_BxLxV, tokens_BxL1[:, 1:])

  return jax.jit(jax.value_and_grad(loss)).lower(params).compile().as_text()


def test_no_copy_as_large_as_an_attention_matrix_or_the_mlp_hidden():
  cfg = ModelConfig(d_model=32, n_layers=2, n_heads=4, seq_len=32, d_ff=128)
  B, L, H, F = 2, cfg.seq_len, cfg.n_heads, cfg.hidden_dim
  copies = layout_copies.layout_copies(_optimized_train_hlo(cfg, B))
  assert any(c.backward for c in copies)  # the parse finds the backward pass's copies at all
  too_large = min(B * H * L * L, B * L * F)  # 8,192; q/k/v's gradients [N, 3·D] are 6,144
  assert [c for c in copies if c.elements >= too_large] == []


def test_parses_fusions_that_transpose_and_skips_those_that_do_not():
  hlo = """
%fused_transpose (p: f32[4,8]) -> f32[8,4] {
  %p = f32[4,8]{1,0} parameter(0)
  ROOT %t = f32[8,4]{1,0} transpose(%p), dimensions={1,0}
}

%fused_add (p: f32[4,8]) -> f32[4,8] {
  %p = f32[4,8]{1,0} parameter(0)
  ROOT %a = f32[4,8]{1,0} add(%p, %p)
}

ENTRY %main (x: f32[4,8]) -> f32[8,4] {
  %x = f32[4,8]{1,0} parameter(0)
  %added = f32[4,8]{1,0} fusion(%x), kind=kLoop, calls=%fused_add, metadata={op_name="jit(f)/add"}
  ROOT %moved = f32[8,4]{1,0} fusion(%added), kind=kLoop, calls=%fused_transpose, metadata={op_name="jit(f)/transpose(jvp())/mul"}
}
"""
  (copy,) = layout_copies.layout_copies(hlo)
  assert (copy.name, copy.shape, copy.elements, copy.backward) == ("moved", (8, 4), 32, True)
