"""Dense training: every weight is trained, no masks."""

import dataclasses

import jax

from rigl_jax.sparse.methods import base


@dataclasses.dataclass(frozen=True)
class Dense(base.SparseMethod):
  """The dense baseline."""

  name = 'dense'
  uses_masks = False

  def init_masks(self, rng, params, sparsities):
    del rng, sparsities
    return jax.tree.map(lambda _: None, params)
