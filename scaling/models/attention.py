"""Causal attention kernels by backend, chosen by `model.attention`, and `causal`, which runs the one
chosen. Shape letters: the legend in `scaling.models`.

- `xla`: `causal_attention`, the reference, whose [B, H, L, M] probabilities XLA keeps; its
  backward pass copies none of them transposed (on XLA:CPU, docs/benchmarks.md).
- `blockwise` (any backend; the CPU's choice for long sequences): query and key blocks with an
  online softmax (Milakov & Gimelshein 2018; Dao et al. 2022, FlashAttention), whose backward pass
  recomputes each block's probabilities from the saved log-sum-exp instead of storing them.
- `splash` (TPU): the Pallas splash-attention kernel (jax.experimental.pallas.ops.tpu), run per
  device under `shard_map` over the batch and head axes of the mesh.
- `cudnn` (GPU): cuDNN's fused kernel through `jax.nn.dot_product_attention`.
None but `xla` stores an [L, M] array. `auto` resolves by the platform the step is compiled for
(`implementation`), which in `scaling compile` is the TPU topology's although this host is a CPU.
"""

import functools
import math

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

from scaling.errors import InputError
from scaling.parallel import rules

IMPLEMENTATIONS = ("auto", "xla", "blockwise", "splash", "cudnn")
# CPU `auto`: from this many positions on, the blockwise kernel. Forward + backward at B 4, H 4,
# K 64, float32 on a loaded 2-vCPU host (jitted jax.grad of each, best of 3, interleaved): at L 256
# the two take the same time (temp 9.5 vs 12.0 MiB), at L 1024 blockwise 0.44× the time of XLA's
# and 22.6 vs 192 MiB of temporaries. Between the two lengths is unmeasured, so XLA's stays there.
BLOCKWISE_FROM_LENGTH = 1024
_NEG = -0.7 * float(jnp.finfo(jnp.float32).max)  # a masked logit: exp() of it is 0, never NaN


def implementation(cfg, platform: str) -> str:
  """The kernel `cfg.attention` means on `platform` ("cpu", "gpu", "tpu"); refuses a kernel the
  platform cannot run, naming the key."""
  chosen = cfg.attention
  if chosen == "auto":
    if platform == "tpu":
      chosen = "splash" if cfg.seq_len % 128 == 0 else "xla"  # the kernel tiles by 128
    elif platform == "gpu":
      fused_ok = cfg.dtype == "bfloat16" and cfg.head_dim <= 128 and cfg.head_dim % 8 == 0
      chosen = "cudnn" if fused_ok else "xla"
    else:
      chosen = "blockwise" if cfg.seq_len >= BLOCKWISE_FROM_LENGTH else "xla"
  needs = {"splash": "tpu", "cudnn": "gpu"}.get(chosen)
  if needs and platform != needs:
    raise InputError(f"model.attention={chosen} needs a {needs.upper()} (the step is compiled "
                     f"for {platform}); use auto, xla or blockwise")
  if chosen == "splash" and cfg.seq_len % 128:
    raise InputError(f"model.attention=splash needs model.seq_len a multiple of 128, got {cfg.seq_len}")
  return chosen


def causal(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, kernel: str) -> jax.Array:
  """Causal self-attention [B, L, H, K] by `kernel`, an `implementation` other than auto."""
  if kernel == "xla":
    return causal_attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK)
  if kernel == "blockwise":
    return blockwise_attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK,
                               block_size(q_BxLxHxK.shape[1], 128))
  if kernel == "splash":
    return splash_attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK)
  return jax.nn.dot_product_attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, is_causal=True,
                                      implementation=kernel)


def block_size(length: int, preferred: int = 512) -> int:
  """The largest block ≤ `preferred` that divides `length` (the kernels tile the sequence evenly);
  the whole sequence when that block would be under 64 positions (too small to be worth a loop)."""
  block = math.gcd(length, preferred)
  return block if block >= 64 else length


# --- The reference kernel (xla), which keeps the [B, H, L, M] probabilities. -------------------

@jax.custom_vjp
def causal_attention(q_BxLxHxK: jax.Array, k_BxLxHxK: jax.Array, v_BxLxHxK: jax.Array) -> jax.Array:
  """softmax(q·kᵀ/√K, causal)·v, as `jax.nn.dot_product_attention(..., implementation="xla")`
  computes it, with a backward pass that copies no [L, L] matrix.

  The gradients of v and k contract the query positions, the major dimension of the probabilities;
  computing them transposed (dvᵀ = doᵀ·p, dkᵀ = qᵀ·ds) lets XLA:CPU transpose the [L, K] operand
  rather than the [L, L] one, and Σ p·dp is taken as Σ o·do, a reduction over K not over L.
  """
  return _attention_fwd(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK)[0]


def _attention_fwd(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK):
  dtype = q_BxLxHxK.dtype
  q_BxHxLxK, k_BxHxMxK, v_BxHxMxK = (x.transpose(0, 2, 1, 3) for x in (q_BxLxHxK, k_BxLxHxK, v_BxLxHxK))
  scale = 1.0 / math.sqrt(q_BxLxHxK.shape[-1])
  logits_BxHxLxM = jnp.einsum("BHLK,BHMK->BHLM", q_BxHxLxK, k_BxHxMxK,
                              preferred_element_type=jnp.float32) * scale
  L = logits_BxHxLxM.shape[-1]
  causal_LxM = jnp.tril(jnp.ones((L, L), bool))
  logits_BxHxLxM = jnp.where(causal_LxM, logits_BxHxLxM, _NEG)
  probs_BxHxLxM = jax.nn.softmax(logits_BxHxLxM, axis=-1).astype(dtype)
  out_BxHxLxK = jnp.einsum("BHLM,BHMK->BHLK", probs_BxHxLxM, v_BxHxMxK)
  residuals = (q_BxHxLxK, k_BxHxMxK, v_BxHxMxK, probs_BxHxLxM, out_BxHxLxK)
  return out_BxHxLxK.transpose(0, 2, 1, 3), residuals


def _attention_bwd(residuals, g_out_BxLxHxK):
  q_BxHxLxK, k_BxHxMxK, v_BxHxMxK, probs_BxHxLxM, out_BxHxLxK = residuals
  dtype = q_BxHxLxK.dtype
  scale = 1.0 / math.sqrt(q_BxHxLxK.shape[-1])
  g_out_BxHxLxK = g_out_BxLxHxK.astype(dtype).transpose(0, 2, 1, 3)
  g_v_BxHxKxM = jnp.einsum("BHLK,BHLM->BHKM", g_out_BxHxLxK, probs_BxHxLxM)
  g_probs_BxHxLxM = jnp.einsum("BHLK,BHMK->BHLM", g_out_BxHxLxK, v_BxHxMxK,
                               preferred_element_type=jnp.float32)
  row_BxHxLx1 = jnp.sum((g_out_BxHxLxK * out_BxHxLxK).astype(jnp.float32), -1, keepdims=True)
  g_logits_BxHxLxM = (probs_BxHxLxM * (g_probs_BxHxLxM - row_BxHxLx1) * scale).astype(dtype)
  g_q_BxHxLxK = jnp.einsum("BHLM,BHMK->BHLK", g_logits_BxHxLxM, k_BxHxMxK)
  g_k_BxHxKxM = jnp.einsum("BHLK,BHLM->BHKM", q_BxHxLxK, g_logits_BxHxLxM)
  return (g_q_BxHxLxK.transpose(0, 2, 1, 3), g_k_BxHxKxM.transpose(0, 3, 1, 2),
          g_v_BxHxKxM.transpose(0, 3, 1, 2))


causal_attention.defvjp(_attention_fwd, _attention_bwd)


# --- Blockwise attention with a recomputing backward pass. -------------------------------------

def _blocks(x_BxLxHxK, block):
  """[B, L, H, K] -> [n, B, H, l, K]: the sequence cut into n blocks of l, block index leading."""
  B, L, H, K = x_BxLxHxK.shape
  return x_BxLxHxK.reshape(B, L // block, block, H, K).transpose(1, 0, 3, 2, 4)


def _unblocks(x_nxBxHxlxK):
  n, B, H, block, K = x_nxBxHxlxK.shape
  return x_nxBxHxlxK.transpose(1, 0, 3, 2, 4).reshape(B, n * block, H, K)


def _scores(q_BxHxlxK, k_BxHxlxK, i, j, block, scale):
  """Scaled causal logits [B, H, l, l] of query block i against key block j, in float32."""
  s_BxHxlxl = jnp.einsum("BHqK,BHkK->BHqk", q_BxHxlxK, k_BxHxlxK,
                         preferred_element_type=jnp.float32) * scale
  rows, cols = i * block + jnp.arange(block), j * block + jnp.arange(block)
  return jnp.where(cols[None, :] <= rows[:, None], s_BxHxlxl, _NEG)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def blockwise_attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, block: int) -> jax.Array:
  """softmax(q·kᵀ/√K, causal)·v over blocks of `block` positions (which must divide L): memory
  O(B·H·L·K + B·H·block²), never O(L²); key blocks above the diagonal are skipped."""
  return _blockwise_fwd(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, block)[0]


def _blockwise_fwd(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, block):
  dtype, K = q_BxLxHxK.dtype, q_BxLxHxK.shape[-1]
  scale = 1.0 / math.sqrt(K)
  q_n, k_n, v_n = (_blocks(x, block) for x in (q_BxLxHxK, k_BxLxHxK, v_BxLxHxK))

  def query_block(args):
    i, q_BxHxlxK = args

    def key_block(j, carry):
      max_BxHxl, sum_BxHxl, acc_BxHxlxK = carry
      s_BxHxlxl = _scores(q_BxHxlxK, k_n[j], i, j, block, scale)
      new_max_BxHxl = jnp.maximum(max_BxHxl, s_BxHxlxl.max(-1))
      p_BxHxlxl = jnp.exp(s_BxHxlxl - new_max_BxHxl[..., None])
      correction_BxHxl = jnp.exp(max_BxHxl - new_max_BxHxl)
      acc_BxHxlxK = acc_BxHxlxK * correction_BxHxl[..., None] + jnp.einsum(
          "BHqk,BHkK->BHqK", p_BxHxlxl.astype(dtype), v_n[j], preferred_element_type=jnp.float32)
      return new_max_BxHxl, sum_BxHxl * correction_BxHxl + p_BxHxlxl.sum(-1), acc_BxHxlxK

    shape = q_BxHxlxK.shape[:-1]
    init = (jnp.full(shape, -jnp.inf), jnp.zeros(shape), jnp.zeros(q_BxHxlxK.shape, jnp.float32))
    max_BxHxl, sum_BxHxl, acc_BxHxlxK = jax.lax.fori_loop(0, i + 1, key_block, init)
    out_BxHxlxK = (acc_BxHxlxK / sum_BxHxl[..., None]).astype(dtype)
    return out_BxHxlxK, max_BxHxl + jnp.log(sum_BxHxl)

  out_n, lse_n = jax.lax.map(query_block, (jnp.arange(q_n.shape[0]), q_n))
  return _unblocks(out_n), (q_n, k_n, v_n, out_n, lse_n)


def _blockwise_bwd(block, residuals, g_out_BxLxHxK):
  q_n, k_n, v_n, out_n, lse_n = residuals
  n, dtype = q_n.shape[0], q_n.dtype
  scale = 1.0 / math.sqrt(q_n.shape[-1])
  g_n = _blocks(g_out_BxLxHxK.astype(dtype), block)
  # Σ_k p·dp over a row equals Σ_K o·do (Dao et al. 2022, eq. in §B.2): a reduction over K.
  delta_n = jnp.sum((g_n * out_n).astype(jnp.float32), -1)

  def grad_logits(i, j):
    """p and dlogits [B, H, l, l] of query block i against key block j, recomputed."""
    p_BxHxlxl = jnp.exp(_scores(q_n[i], k_n[j], i, j, block, scale) - lse_n[i][..., None])
    g_p_BxHxlxl = jnp.einsum("BHqK,BHkK->BHqk", g_n[i], v_n[j], preferred_element_type=jnp.float32)
    return p_BxHxlxl, (p_BxHxlxl * (g_p_BxHxlxl - delta_n[i][..., None]) * scale).astype(dtype)

  def query_grads(i):
    def key_block(j, g_q_BxHxlxK):
      _, g_s = grad_logits(i, j)
      return g_q_BxHxlxK + jnp.einsum("BHqk,BHkK->BHqK", g_s, k_n[j],
                                      preferred_element_type=jnp.float32)
    return jax.lax.fori_loop(0, i + 1, key_block, jnp.zeros(q_n.shape[1:], jnp.float32))

  def key_value_grads(j):
    def query_block(i, carry):
      g_k_BxHxlxK, g_v_BxHxlxK = carry
      p, g_s = grad_logits(i, j)
      g_v_BxHxlxK += jnp.einsum("BHqk,BHqK->BHkK", p.astype(dtype), g_n[i],
                                preferred_element_type=jnp.float32)
      g_k_BxHxlxK += jnp.einsum("BHqk,BHqK->BHkK", g_s, q_n[i], preferred_element_type=jnp.float32)
      return g_k_BxHxlxK, g_v_BxHxlxK

    zeros = jnp.zeros(k_n.shape[1:], jnp.float32)
    return jax.lax.fori_loop(j, n, query_block, (zeros, zeros))

  g_q_n = jax.lax.map(query_grads, jnp.arange(n))
  g_k_n, g_v_n = jax.lax.map(key_value_grads, jnp.arange(n))
  return tuple(_unblocks(g.astype(dtype)) for g in (g_q_n, g_k_n, g_v_n))


blockwise_attention.defvjp(_blockwise_fwd, _blockwise_bwd)


# --- Splash attention (Pallas, TPU). ------------------------------------------------------------

def splash_attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, *, interpret: bool = False) -> jax.Array:
  """Causal splash attention, per device under `shard_map` when a mesh is set: the batch split as
  `rules` splits it, heads over the tensor axis; each device runs the kernel on its shard.
  `interpret` runs the Pallas kernel in interpret mode (any backend: the tests' CPU)."""
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as splash
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as masks

  scale = 1.0 / math.sqrt(q_BxLxHxK.shape[-1])  # splash does not scale the logits itself

  def local(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK):
    _, L, H, _ = q_BxLxHxK.shape
    block = block_size(L)
    sizes = splash.BlockSizes(
        block_q=block, block_kv=block, block_kv_compute=block, block_q_dkv=block,
        block_kv_dkv=block, block_kv_dkv_compute=block, block_q_dq=block, block_kv_dq=block)
    mask = masks.MultiHeadMask([masks.CausalMask((L, L)) for _ in range(H)])
    kernel = splash.make_splash_mha(mask, block_sizes=sizes, head_shards=1, q_seq_shards=1,
                                    interpret=interpret)
    q, k, v = (x.transpose(0, 2, 1, 3) for x in (q_BxLxHxK * scale, k_BxLxHxK, v_BxLxHxK))
    return jax.vmap(kernel)(q, k, v).transpose(0, 2, 1, 3)

  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return local(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK)
  spec = PartitionSpec(rules.logical_to_spec(("batch",))[0], None,
                       rules.logical_to_spec(("heads",))[0], None)
  return jax.shard_map(local, in_specs=(spec, spec, spec), out_specs=spec,
                       check_vma=False)(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK)


def kernel_flops_per_step(cfg, platform: str, batch_size: int) -> float:
  """FLOPs per step of the attention kernels XLA's cost analysis cannot see into (a Pallas call
  counts 0 there), counted as the kernel runs them: the q·kᵀ and p·v blocks on or below the
  diagonal (causal), forward once plus again under any remat policy (the kernel's own residuals
  are not among the names a policy saves, so the backward pass reruns it), and the backward's dq kernel (3 block matmuls: s, dp, dq)
  and dk/dv kernel (4: s, dp, dv, dk). Each block matmul is 2·l²·K FLOPs per batch row and head (l
  positions a block)."""
  if implementation(cfg, platform) != "splash":
    return 0.0
  block = block_size(cfg.seq_len)
  n = cfg.seq_len // block
  visited = n * (n + 1) // 2  # causal: blocks on or below the diagonal
  matmul = 2.0 * block * block * cfg.head_dim * visited * batch_size * cfg.n_heads * cfg.n_layers
  forwards = 1 if cfg.remat == "none" else 2
  return matmul * (2 * forwards + 3 + 4)
