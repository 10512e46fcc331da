"""JAX's persistent compilation cache, set up one way by every command that caches its compiles
(a sweep's runs, `scaling fit`'s solvers); each decides where, and whether a user's cache wins.

Every program is cached: JAX's thresholds default to skipping programs that compile in under a
second or are small, which is most of those of small CPU runs and of fits, whose whole time a
re-run would then spend compiling them again. JAX is imported on use, not with this module, so
`scaling fit --help` stays free of it.
"""

from collections.abc import Callable


def cache_every_program(path: str) -> Callable[[], None]:
  """Caches every program JAX compiles from now on in `path`; returns what puts the settings it
  replaced back."""
  import jax
  from jax.experimental.compilation_cache import compilation_cache

  settings = {"jax_compilation_cache_dir": path,
              "jax_persistent_cache_min_compile_time_secs": 0.0,
              "jax_persistent_cache_min_entry_size_bytes": -1}
  previous = {name: getattr(jax.config, name) for name in settings}

  def apply(values: dict) -> None:
    for name, value in values.items():
      jax.config.update(name, value)
    compilation_cache.reset_cache()  # a cache opened earlier in this process keeps its old path

  apply(settings)
  return lambda: apply(previous)
