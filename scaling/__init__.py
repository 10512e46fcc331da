"""scaling: train a Transformer family on a device mesh, log loss against compute, fit the law."""

from scaling import jax_platforms as _jax_platforms

__version__ = "0.1.0"

# Before any module of the package imports jax: without TPU chips, JAX must not start libtpu.
_jax_platforms.skip_absent_tpu()
