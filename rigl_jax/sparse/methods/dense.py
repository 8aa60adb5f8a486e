"""Dense training: every weight is trained, no masks."""

import dataclasses

import jax

from rigl_jax.sparse import flops
from rigl_jax.sparse.methods import base


@dataclasses.dataclass(frozen=True)
class Dense(base.SparseMethod):
  """The dense baseline."""

  name = 'dense'
  display_name = 'Dense'
  uses_masks = False
  reads_sparsity = False

  def train_flops(self, costs: flops.RunCosts) -> float:
    return costs.num_steps * flops.dense_step(costs.dense_flops)

  def init_masks(self, rng, params, sparsities):
    del rng, sparsities
    return jax.tree.map(lambda _: None, params)


METHOD = Dense
