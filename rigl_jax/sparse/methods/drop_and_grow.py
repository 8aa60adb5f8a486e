"""Shared core of SET, SNFS and RigL: drop by magnitude, grow by a score.

At an update step t, each sparse layer replaces
k = floor(f_decay(t) * n_active) connections: the k active weights with the
smallest |w| are dropped and k entries among those not kept are grown by the
method's score. Subclasses say how they score growth. They read the
``mask_update`` config block: ΔT (interval), from begin_step to T_end
(end_step; both scaled by the training multiplier, as the reference's
``maskupdate_begin_step`` and ``maskupdate_end_step``), α (drop_fraction),
f_decay (schedule, power for inverse_power), and two options of the
reference implementation (github.com/google-research/rigl,
``rigl/sparse_optimizers_base.py``):

- ``grow_init``, the value grown connections start from: 'zeros' (the
  paper; the default); 'random_normal', N(0, std(w)), and
  'random_uniform', U(-mean|w|, mean|w|), w the layer's kernel at the
  update with its inactive zeros (the reference's variable keeps stale
  values there); for RigL also 'grad_scale' (the dense gradient) and
  'grad_sign' (its sign). A suffix '_d' divides by d ('random_normal_2'),
  as the reference's ``extract_number``. Its 'initial_dist' (a shuffle of
  the layer's initial dense values) is not offered: the train state keeps
  no initial dense weights.
- ``drop_noise_std``: N(0, std) noise added to the |w| of the active
  weights that the drop ranks (the reference's ``generic_mask_update``
  adds 1e-5, always, to every entry's score; here inactive entries are
  never ranked, and the rank is by ||w| + noise|, which differs from the
  reference's signed score only for |w| within the noise of 0). 0, the
  default, leaves ties to the seeded tie-breaking alone.
"""

import dataclasses
import re
from typing import Any, ClassVar, Optional

import jax
import jax.numpy as jnp
import numpy as np

from rigl_jax.sparse import checks
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import schedules
from rigl_jax.sparse.methods import base
from rigl_jax.sparse.tree_paths import PyTree

# Values grown connections may start from (a '_d' suffix divides by d).
GROW_INITS = ('zeros', 'random_normal', 'random_uniform')
GRADIENT_GROW_INITS = ('grad_scale', 'grad_sign')


def parse_grow_init(value: str) -> tuple[str, float]:
  """('random_normal', 2.0) from 'random_normal_2'; the divisor 1 if none.

  The reference's ``extract_number``: a trailing '_<number>' is the
  divisor.
  """
  match = re.fullmatch(r'(.*?)(?:_(\d*\.?\d+))?', value)
  kind, divisor = match.group(1), match.group(2)
  return kind, float(divisor) if divisor else 1.0


def grow_values(
    kind: str,
    divisor: float,
    rng: jax.Array,
    weights: jax.Array,
    grads: jax.Array,
) -> jax.Array:
  """The values of one layer's grown connections (see the module doc)."""
  if kind == 'random_normal':
    values = jnp.std(weights) * jax.random.normal(rng, weights.shape)
  elif kind == 'random_uniform':
    bound = jnp.mean(jnp.abs(weights))
    values = jax.random.uniform(rng, weights.shape, minval=-bound, maxval=bound)
  elif kind == 'grad_scale':
    values = grads
  elif kind == 'grad_sign':
    values = jnp.sign(grads)
  else:
    return jnp.zeros_like(weights)
  return (values / divisor).astype(weights.dtype)


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
    grow_init: the value grown connections start from (``GROW_INITS``,
      for RigL also ``GRADIENT_GROW_INITS``, with an optional '_d').
    drop_noise_std: std of the normal noise added to |w| before the drop.
  """

  update_schedule: schedules.UpdateSchedule
  drop_fraction: schedules.DropFraction
  skip_optimizer: Optional[bool] = None
  grow_init: str = 'zeros'
  drop_noise_std: float = 0.0

  changes_topology = True
  default_skip_optimizer = False
  scaled_step_keys = ('mask_update.begin_step', 'mask_update.end_step')
  # The grow_init kinds this method offers.
  grow_inits: ClassVar[tuple[str, ...]] = GROW_INITS

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
            'grow_init': 'zeros',  # or GROW_INITS, GRADIENT_GROW_INITS
            'drop_noise_std': 0.0,  # the reference's: 1e-5
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
          grow_init=mask_update.grow_init,
          drop_noise_std=mask_update.drop_noise_std,
      )
    kind, divisor = parse_grow_init(str(mask_update.grow_init))
    checks.require(
        kind in cls.grow_inits and divisor > 0,
        'mask_update.grow_init',
        f'must be one of {list(cls.grow_inits)}, optionally with a '
        f"positive divisor ('random_normal_2'), for {cls.name}, "
        f'got {mask_update.grow_init!r}',
    )
    checks.require(
        isinstance(mask_update.drop_noise_std, (int, float))
        and not isinstance(mask_update.drop_noise_std, bool)
        and mask_update.drop_noise_std >= 0,
        'mask_update.drop_noise_std',
        f'must be a number >= 0, got {mask_update.drop_noise_std!r}',
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

  def drop_weights(self, rng: jax.Array, params: PyTree, masks: PyTree):
    """The weights whose |w| the drop ranks: ``params`` plus the noise.

    ``rng`` is the update's; the noise draws from a key folded out of it,
    so the update's other choices do not depend on the noise setting.
    """
    if not self.drop_noise_std:
      return params
    noise = masks_lib.map_masks(
        lambda m, p: None if m is None else jnp.zeros(p.shape, jnp.float32),
        masks,
        params,
    )
    leaves, treedef = jax.tree.flatten(noise, is_leaf=lambda x: x is None)
    sizes = [x.size for x in leaves if x is not None]
    draws = iter(
        jnp.split(
            self.drop_noise_std
            * jax.random.normal(jax.random.fold_in(rng, 2), (sum(sizes),)),
            list(np.cumsum(sizes)[:-1]),
        )
    )
    noise = jax.tree.unflatten(
        treedef,
        [None if x is None else next(draws).reshape(x.shape) for x in leaves],
    )
    # |w| + noise, as a weight: the drop ranks its magnitude.
    return masks_lib.map_masks(
        lambda m, p, n: p if m is None else jnp.abs(p) + n, masks, params, noise
    )

  def update_masks(self, rng, step, params, grads, masks, state):
    fraction = self.drop_fraction(step)
    weights = self.drop_weights(rng, params, masks)
    score_rng, tie_rng = jax.random.split(rng)
    scores = self.grow_scores(score_rng, params, grads, masks, state)
    return masks_lib.map_masks(
        lambda m, w, s, seed: None
        if m is None
        else self.structure.drop_and_grow(
            m, w, s, num_to_swap(m, fraction), seed
        ),
        masks,
        weights,
        scores,
        masks_lib.tie_seeds(tie_rng, masks),
    )

  def init_grown(self, rng, weights, grads, grown, params):
    kind, divisor = parse_grow_init(self.grow_init)
    if kind == 'zeros':
      return params
    keys = masks_lib.tie_seeds(rng, grown)
    return masks_lib.map_masks(
        lambda g, w, d, p, key: p
        if g is None
        else jnp.where(
            g,
            grow_values(
                kind, divisor, jax.random.key(key), w, d.astype(w.dtype)
            ),
            p,
        ),
        grown,
        weights,
        grads,
        params,
        keys,
    )
