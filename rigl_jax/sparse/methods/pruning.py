"""Gradual magnitude pruning (Zhu & Gupta 2018).

Training starts dense. At each pruning step the smallest-|w| active weights
of each layer are removed until the layer reaches the cubic schedule's
sparsity for that step; each layer's final sparsity is the distribution's
target. Masks only ever lose entries.
"""

import dataclasses

import jax.numpy as jnp

from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import schedules
from rigl_jax.sparse import topology
from rigl_jax.sparse.methods import base


@dataclasses.dataclass(frozen=True)
class GradualPruning(base.SparseMethod):
  """Magnitude pruning on the Zhu & Gupta cubic schedule."""

  schedule: schedules.PruningSchedule

  name = 'pruning'
  changes_topology = True

  @classmethod
  def from_config(cls, config):
    return cls(
        schedule=schedules.PruningSchedule(
            begin_step=config.pruning.begin_step,
            end_step=config.pruning.end_step,
            frequency=config.pruning.frequency,
            initial_sparsity=config.pruning.initial_sparsity))

  def init_masks(self, rng, params, sparsities):
    del rng
    return masks_lib.full_masks(params, sparsities)

  def init_state(self, params, masks, sparsities):
    del masks
    # Counts, not sparsities, so that the last pruning step reaches exactly
    # the number of active weights that random_masks would give.
    def counts(sparsity, p):
      if sparsity is None:
        return None
      return {
          'initial': jnp.asarray(masks_lib.num_active_for(
              self.schedule.initial_sparsity, p.size), jnp.int32),
          'final': jnp.asarray(masks_lib.num_active_for(sparsity, p.size),
                               jnp.int32),
      }
    return {'num_active': masks_lib.map_masks(counts, sparsities, params)}

  def is_update_step(self, step):
    return self.schedule.is_update_step(step)

  def num_active_at(self, step, counts):
    """Active entries at ``step``: the cubic schedule, in counts."""
    remaining = self.schedule.remaining(step)
    span = (counts['initial'] - counts['final']).astype(jnp.float32)
    return counts['final'] + jnp.round(span * remaining).astype(jnp.int32)

  def update_masks(self, rng, step, params, grads, masks, state):
    del rng, grads
    return masks_lib.map_masks(
        lambda m, w, c: None if m is None else topology.prune_to(
            m, w, self.num_active_at(step, c)), masks, params,
        state['num_active'])
