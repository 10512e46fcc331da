"""The decode loop: seeded, greedy equals step-by-step argmax of the full forward, for every family."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from scaling import models
from scaling.data.tokenizer import ByteTokenizer
from scaling.errors import InputError
from scaling.models import ModelConfig
from scaling.sample import sampler
from small_runs import build_model


@pytest.fixture(scope="module", params=[*models.names(), "transformer-scanned"])
def model(request):
  """Every family, and a Transformer whose blocks are scanned (its decode scans them inside the
  sampler's scan over tokens)."""
  if request.param == "transformer-scanned":
    return build_model(ModelConfig(d_model=32, n_layers=2, n_heads=4, seq_len=32, scan_layers=True))
  return build_model(ModelConfig(arch=request.param, d_model=32, n_layers=2, n_heads=4, seq_len=32))


PROMPT_1xP = jnp.asarray([[0, 100, 101, 102, 40]], jnp.int32)


def test_greedy_decoding_is_the_argmax_of_the_full_forward_pass(model):
  """The cached loop picks, token by token, what re-running the whole prefix would pick."""
  got_1xN = sampler.sample(model, PROMPT_1xP, jax.random.key(0), max_tokens=6, temperature=0.0,
                           top_k=0)
  # One compiled forward over a fixed length: causality makes the unfilled tail irrelevant.
  tokens_1xL = jnp.zeros((1, PROMPT_1xP.shape[1] + 6), jnp.int32).at[:, :PROMPT_1xP.shape[1]].set(
      PROMPT_1xP)
  forward = nnx.jit(lambda model, tokens: model(tokens))
  for t in range(PROMPT_1xP.shape[1], tokens_1xL.shape[1]):
    next_1 = jnp.argmax(forward(model, tokens_1xL)[:, t - 1], axis=-1).astype(jnp.int32)
    tokens_1xL = tokens_1xL.at[:, t].set(next_1)
  np.testing.assert_array_equal(got_1xN, tokens_1xL[:, PROMPT_1xP.shape[1]:])


def test_sampling_is_deterministic_for_a_seed(model):
  def draw(seed):
    return np.asarray(sampler.sample(model, PROMPT_1xP, jax.random.key(seed), max_tokens=16,
                                     temperature=1.0, top_k=0))

  np.testing.assert_array_equal(draw(3), draw(3))
  assert not np.array_equal(draw(3), draw(4))


def test_top_1_sampling_is_greedy(model):
  kwargs = dict(max_tokens=8, top_k=1)
  top1 = sampler.sample(model, PROMPT_1xP, jax.random.key(5), temperature=1.0, **kwargs)
  greedy = sampler.sample(model, PROMPT_1xP, jax.random.key(0), temperature=0.0, **kwargs)
  np.testing.assert_array_equal(top1, greedy)


def test_filter_logits_keeps_the_top_k_scaled_by_temperature():
  logits_1xV = jnp.asarray([[1.0, 4.0, 3.0, 2.0]])
  out = np.asarray(sampler.filter_logits(logits_1xV, temperature=2.0, top_k=2))
  np.testing.assert_array_equal(out, [[-np.inf, 2.0, 1.5, -np.inf]])
  np.testing.assert_array_equal(sampler.filter_logits(logits_1xV, 1.0, 0), logits_1xV)


def test_prompt_starts_a_document_and_refuses_the_separator_or_unencodable_text():
  tokenizer = ByteTokenizer()
  np.testing.assert_array_equal(sampler.encode_prompt("ab", tokenizer), [0, 97, 98])
  with pytest.raises(InputError, match="separator"):
    sampler.encode_prompt("a\x00b", tokenizer)
  with pytest.raises(InputError, match="cannot be encoded"):
    sampler.encode_prompt("\udc80", tokenizer)
