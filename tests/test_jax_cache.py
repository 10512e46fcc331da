"""jax_cache: every program compiled while the cache is set lands in it; undoing puts JAX back."""

import os

import jax
import jax.numpy as jnp

from scaling import jax_cache


def test_every_program_is_cached_until_undone(tmp_path):
  before = (jax.config.jax_compilation_cache_dir,
            jax.config.jax_persistent_cache_min_compile_time_secs)
  restore = jax_cache.cache_every_program(str(tmp_path))
  try:
    jax.jit(lambda x: x * 3.0 + 1.0)(jnp.arange(5.0)).block_until_ready()  # small, fast: cached too
  finally:
    restore()
  assert os.listdir(tmp_path)
  assert (jax.config.jax_compilation_cache_dir,
          jax.config.jax_persistent_cache_min_compile_time_secs) == before
