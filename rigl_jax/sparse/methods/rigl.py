"""RigL (Evci et al. 2020): drop by magnitude, grow by |dense gradient|."""

import dataclasses

import jax.numpy as jnp

from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse.methods import drop_and_grow


@dataclasses.dataclass(frozen=True)
class RigL(drop_and_grow.DropAndGrowMethod):
  """Rigged Lottery: grows the inactive entries with the largest |gradient|.

  As in the paper's Algorithm 1, an update step applies no optimizer step
  unless ``skip_optimizer`` is set to False.
  """

  name = 'rigl'
  default_skip_optimizer = True

  def grow_scores(self, rng, params, grads, masks, state):
    del rng, params, state
    return masks_lib.map_masks(
        lambda m, g: None if m is None else jnp.abs(g), masks, grads)
