"""Gradual magnitude pruning (Zhu & Gupta 2018).

Training starts dense. At each pruning step the smallest-|w| active weights
of each layer are removed until the layer reaches the cubic schedule's
sparsity for that step; each layer's final sparsity is the distribution's
target. Masks only ever lose entries. Reads the ``pruning`` block.
"""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp

from rigl_jax.sparse import checks
from rigl_jax.sparse import flops
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import schedules
from rigl_jax.sparse import structure as structure_lib
from rigl_jax.sparse import topology
from rigl_jax.sparse.methods import base


def schedule_counts(
    structure: structure_lib.MaskStructure,
    params: Any,
    sparsities: Any,
    initial: Callable[[float], float],
) -> Any:
  """{'initial', 'final'} active entries (per group) of each sparse leaf.

  Counts, not sparsities, so that the last pruning step reaches exactly the
  number of active weights that random_masks would give; per group under a
  mask structure. ``initial`` maps a leaf's final sparsity to its initial.
  """

  def counts(sparsity, p):
    if sparsity is None:
      return None
    per_group = structure.active_per_group
    return {
        'initial': jnp.asarray(
            per_group(initial(sparsity), p.shape), jnp.int32
        ),
        'final': jnp.asarray(per_group(sparsity, p.shape), jnp.int32),
    }

  return masks_lib.map_masks(counts, sparsities, params)


def active_at(
    schedule: schedules.PruningSchedule, step: Any, counts: Mapping[str, Any]
) -> Any:
  """Active entries (per group) at ``step``: the cubic schedule, in counts."""
  remaining = schedule.remaining(step)
  span = (counts['initial'] - counts['final']).astype(jnp.float32)
  return counts['final'] + jnp.round(span * remaining).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class GradualPruning(base.SparseMethod):
  """Magnitude pruning on the Zhu & Gupta cubic schedule."""

  schedule: schedules.PruningSchedule

  name = 'pruning'
  display_name = 'Pruning'
  changes_topology = True
  scaled_step_keys = ('pruning.begin_step', 'pruning.end_step')

  @classmethod
  def config_defaults(cls):
    return {
        'pruning': {
            'begin_step': 0,
            'end_step': 750,
            'frequency': 100,
            'initial_sparsity': 0.0,
        }
    }

  @classmethod
  def smoke_overrides(cls, num_steps):
    return {
        'pruning.begin_step': 0,
        'pruning.end_step': num_steps - 1,
        'pruning.frequency': 1,
    }

  @classmethod
  def from_config(cls, config):
    pruning = config.pruning
    with checks.renamed(
        **{
            k: f'pruning.{k}'
            for k in ('begin_step', 'end_step', 'frequency', 'initial_sparsity')
        }
    ):
      schedule = schedules.PruningSchedule(
          begin_step=pruning.begin_step,
          end_step=pruning.end_step,
          frequency=pruning.frequency,
          initial_sparsity=pruning.initial_sparsity,
      )
    checks.require(
        pruning.end_step <= config.num_train_steps,
        'pruning.end_step',
        f'{pruning.end_step} is beyond num_train_steps '
        f'({config.num_train_steps})',
    )
    return cls(schedule=schedule)

  def train_flops(self, costs: flops.RunCosts) -> float:
    """3 f(t) summed over steps, f following the pruning schedule.

    The masks start full; a pruning step at t changes the masks after step
    t's gradients, so step t costs the masks of the previous pruning step.
    """
    schedule, num_steps = self.schedule, costs.num_steps
    # A pruning step at the last step (or later) changes no step's cost.
    updates = [
        t
        for t in range(
            schedule.begin_step, min(schedule.end_step, num_steps - 2) + 1
        )
        if schedule.is_update_step(t)
    ]
    if not updates:
      return num_steps * flops.dense_step(costs.dense_flops)
    total = (updates[0] + 1) * flops.dense_step(costs.dense_flops)
    for step, next_step in zip(updates, updates[1:] + [num_steps - 1]):
      total += (next_step - step) * flops.sparse_step(
          costs.flops_at(self.sparsities_after(step, costs.sparsities))
      )
    return total

  def sparsities_after(
      self, step: int, final: Mapping[str, float]
  ) -> dict[str, float]:
    """Per-layer sparsities the pruning step at ``step`` prunes to."""
    remaining = self.schedule.remaining_at(step)
    initial = self.schedule.initial_sparsity
    return {path: s + (initial - s) * remaining for path, s in final.items()}

  def init_masks(self, rng, params, sparsities):
    del rng
    return masks_lib.full_masks(params, sparsities)

  def init_state(self, params, masks, sparsities):
    del masks
    return {
        'num_active': schedule_counts(
            self.structure,
            params,
            sparsities,
            lambda _: self.schedule.initial_sparsity,
        )
    }

  def is_update_step(self, step):
    return self.schedule.is_update_step(step)

  def num_active_at(self, step, counts):
    """Active entries at ``step``: the cubic schedule, in counts."""
    return active_at(self.schedule, step, counts)

  def update_masks(self, rng, step, params, grads, masks, state):
    del grads
    prune = lambda c: lambda m, w, seed: topology.prune_to(
        m, w, self.num_active_at(step, c), seed
    )
    return masks_lib.map_masks(
        lambda m, w, c, seed: None
        if m is None
        else self.structure.apply(prune(c), m, w, tie_seed=seed),
        masks,
        params,
        state['num_active'],
        masks_lib.tie_seeds(rng, masks),
    )


METHOD = GradualPruning
