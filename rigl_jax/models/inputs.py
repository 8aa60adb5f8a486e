"""What a model does to its inputs before its first layer."""

import jax
import jax.numpy as jnp


def as_float(x: jax.Array) -> jax.Array:
  """Integer inputs as float32; floating ones keep their dtype.

  Under mixed precision the step hands the model bfloat16 inputs, which
  must stay bfloat16 for the layers to compute in it.
  """
  return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)
