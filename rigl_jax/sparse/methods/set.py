"""SET (Mocanu et al. 2018): drop by magnitude, grow uniformly at random."""

import dataclasses

from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse.methods import drop_and_grow


@dataclasses.dataclass(frozen=True)
class Set(drop_and_grow.DropAndGrowMethod):
  """Sparse Evolutionary Training: random growth among inactive entries.

  Training FLOPs: 3 f_S every step (growth needs no dense gradient).
  """

  name = 'set'
  display_name = 'SET'

  def grow_scores(self, rng, params, grads, masks, state):
    del grads, state
    return masks_lib.random_scores(rng, masks, params)


METHOD = Set
