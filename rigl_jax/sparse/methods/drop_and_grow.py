"""Shared core of SET, SNFS and RigL: drop by magnitude, grow by a score.

At an update step t, each sparse layer replaces
k = floor(f_decay(t) * n_active) connections: the k active weights with the
smallest |w| are dropped and k entries among those not kept are grown by the
method's score. Subclasses say how they score growth. They read the
``mask_update`` config block: ΔT (interval), T_end (end_step), α
(drop_fraction) and f_decay (schedule, power for inverse_power).
"""

import dataclasses
from typing import Any, Optional

import jax
import jax.numpy as jnp

from rigl_jax.sparse import checks
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import schedules
from rigl_jax.sparse.methods import base
from rigl_jax.sparse.tree_paths import PyTree


def num_to_swap(mask: jax.Array, fraction: Any) -> jax.Array:
  """k = floor(fraction * n_active) for one layer."""
  num_active = jnp.sum(mask, dtype=jnp.int32)
  return jnp.floor(fraction * num_active).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class DropAndGrowMethod(base.SparseMethod):
  """A dynamic sparse method with a fixed number of active weights per layer.

  Attributes:
    update_schedule: which steps update the topology (ΔT, T_end).
    drop_fraction: f_decay(t), the fraction of connections replaced.
    skip_optimizer: whether an update step applies no optimizer step. None
      takes the method's default (``default_skip_optimizer``).
  """

  update_schedule: schedules.UpdateSchedule
  drop_fraction: schedules.DropFraction
  skip_optimizer: Optional[bool] = None

  changes_topology = True
  default_skip_optimizer = False
  scaled_step_keys = ('mask_update.end_step',)

  @classmethod
  def config_defaults(cls):
    return {
        'mask_update': {
            'begin_step': 0,
            'end_step': 750,  # T_end
            'interval': 100,  # ΔT
            'drop_fraction': 0.3,  # α
            'schedule': 'cosine',
            'power': 1.0,  # of the inverse_power schedule
            # None: the method's default (RigL skips the optimizer step, as in
            # the paper; SET and SNFS take it before changing the topology).
            'skip_optimizer_step': base.Unset(bool),
        }
    }

  @classmethod
  def smoke_overrides(cls, num_steps):
    return {
        'mask_update.begin_step': 0,
        'mask_update.end_step': num_steps,
        'mask_update.interval': 1,
    }

  @classmethod
  def method_kwargs(cls, config: Any) -> dict[str, Any]:
    """Constructor arguments of this method read from ``config``."""
    mask_update = config.mask_update
    with checks.renamed(
        begin_step='mask_update.begin_step',
        end_step='mask_update.end_step',
        interval='mask_update.interval',
        schedule='mask_update.schedule',
        initial_fraction='mask_update.drop_fraction',
        power='mask_update.power',
    ):
      kwargs = dict(
          update_schedule=schedules.UpdateSchedule(
              begin_step=mask_update.begin_step,
              end_step=mask_update.end_step,
              interval=mask_update.interval,
          ),
          drop_fraction=schedules.DropFraction(
              schedule=mask_update.schedule,
              initial_fraction=mask_update.drop_fraction,
              end_step=mask_update.end_step,
              power=mask_update.power,
          ),
          skip_optimizer=mask_update.skip_optimizer_step,
      )
    checks.require(
        mask_update.end_step <= config.num_train_steps,
        'mask_update.end_step',
        f'{mask_update.end_step} is beyond num_train_steps '
        f'({config.num_train_steps})',
    )
    return kwargs

  @classmethod
  def from_config(cls, config: Any) -> 'DropAndGrowMethod':
    return cls(**cls.method_kwargs(config))

  @property
  def skip_optimizer_step(self) -> bool:
    if self.skip_optimizer is None:
      return self.default_skip_optimizer
    return self.skip_optimizer

  def is_update_step(self, step: Any) -> Any:
    return self.update_schedule.is_update_step(step)

  def grow_scores(
      self,
      rng: jax.Array,
      params: PyTree,
      grads: PyTree,
      masks: PyTree,
      state: PyTree,
  ) -> PyTree:
    """Per-layer growth scores (larger grows first), None for dense leaves."""
    raise NotImplementedError

  def update_masks(self, rng, step, params, grads, masks, state):
    fraction = self.drop_fraction(step)
    score_rng, tie_rng = jax.random.split(rng)
    scores = self.grow_scores(score_rng, params, grads, masks, state)
    return masks_lib.map_masks(
        lambda m, w, s, seed: None
        if m is None
        else self.structure.drop_and_grow(
            m, w, s, num_to_swap(m, fraction), seed
        ),
        masks,
        params,
        scores,
        masks_lib.tie_seeds(tie_rng, masks),
    )
