"""MEST (Yuan et al., "MEST: Accurate and Fast Memory-Economic Sparse
Training Framework on the Edge", NeurIPS 2021; code:
github.com/boone891214/MEST, ``prune_utils/retrain.py``
(``SparseTraining.update_mask``) and ``prune_utils/utils_pr.py``
(``weight_pruning``, ``weight_growing``)): drop by |w| + λ |gradient|, grow
at random, with Elastic Mutation (MEST+EM).

Training starts from the largest-magnitude entries of the initial weights
(``--sp-prune-before-retrain`` in the shipped scripts: ``prune_harden``
prunes the dense initialization by |w|). Every ΔT steps, from step 0, while
the mutation rate m_t is above 0, each sparse layer with n active weights:

1. drops the floor(m_t n) active weights with the smallest score
   |w| + λ |g| (g: the step's gradient of the active weights, which a
   sparse backward pass computes), as ``weight_pruning`` prunes the layer to
   sparsity s + m_t;
2. grows as many entries, uniformly at random among those not kept, back to
   sparsity s (``weight_growing``); they start at zero
   (``--sp-update-init-method zero``) with zero optimizer state.

Elastic Mutation: m_t steps down at fixed points of training and reaches 0,
after which the topology is fixed. This module builds MEST+EM; the Soft
Memory Bound variant (MEST+EM&S, growing above the target density before
the next pruning) is not built. Reads the ``mest`` block.

Defaults and their source (``scripts/resnet32/EM/run_mag_prune_irr_sp_EM.sh``
and the README, 90% sparsity on CIFAR-10, 160 epochs):

- ``mutation_rates`` = (0.2, 0.1, 0.0), fractions of the active weights:
  ``LOWER_BOUND="0.92-0.91-0.9"`` with ``UPPER_BOUND="0.9-0.9-0.9"``
  prune to 2, then 1, then 0 points of sparsity above the 90% target
  before regrowing, i.e. 20% and 10% of the active weights.
- ``decay_fractions`` = (0.5625, 0.75): ``MASK_UPDATE_DECAY_EPOCH="90-120"``
  of ``EPOCHS=160``, as fractions of ``num_train_steps``.
- ``interval`` = 31 (ΔT): ``SP_MASK_UPDATE_FREQ="5"`` epochs, 1/32 of the
  run, on the base config's 1000 steps (configs set their own).
- ``grad_coefficient`` = 0.0 (λ): the ``--sp-lmd`` default of
  ``prune_utils/retrain.py``, which the shipped scripts keep.

What differs from the official code, and why:

- The rate is a fraction of each layer's active weights, not points of
  sparsity: the same at the scripts' 90%, and at 98% it does not drop
  every active weight of a 99%-sparse layer (2 points of its entries would
  be twice its active ones). Layer-wise counts at the run's per-layer
  sparsities; the official code prunes every listed layer to one sparsity
  bound by a percentile (``np.percentile``), whose count can differ by
  ties.
- The gradient in the score is the update step's own, of the active
  weights. In the official code ``update_mask`` runs at the start of an
  epoch, after the last ``optimizer.zero_grad()``, so ``w.grad`` holds
  zeros there and the λ term has no effect.
- The masks change after the update step's optimizer step (as SET here);
  the official code changes them before the epoch's first batch. Grown
  weights start with zero momentum; the official SGD keeps its buffers.
- Mask structures (``n_m``, ``fan_in``) are kept: the layer-wide drop is
  regrown group by group, each group getting back what it lost
  (``MaskStructure.drop_and_grow``).

Training FLOPs: 3 f_S every step, as SET's (the score needs only the active
weights' gradients and growth is random, so no dense gradient is computed).
"""

import dataclasses
import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp

from rigl_jax.sparse import checks
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse.methods import base


@dataclasses.dataclass(frozen=True)
class Mest(base.SparseMethod):
  """Magnitude-and-gradient drop, random growth, decaying mutation rate.

  Attributes:
    interval: ΔT, steps between mutations (from step 0).
    mutation_rates: m, the fraction of each layer's active weights
      mutated, one per phase.
    decay_steps: the steps where the next phase begins.
    grad_coefficient: λ in the drop score |w| + λ |g|.
  """

  interval: int = 31
  mutation_rates: tuple[float, ...] = (0.2, 0.1, 0.0)
  decay_steps: tuple[int, ...] = (562, 750)
  grad_coefficient: float = 0.0

  name = 'mest'
  display_name = 'MEST'
  changes_topology = True

  def __post_init__(self):
    checks.require_positive_int('mest.interval', self.interval)
    for rate in self.mutation_rates:
      checks.require_in_range('mest.mutation_rates', rate, 0.0, 1.0)
    checks.require(
        len(self.mutation_rates) == len(self.decay_steps) + 1,
        'mest.mutation_rates',
        f'needs one rate more than decay_fractions '
        f'({len(self.decay_steps)}), got {self.mutation_rates!r}',
    )
    checks.require_in_range(
        'mest.grad_coefficient', self.grad_coefficient, 0.0, math.inf
    )

  @classmethod
  def config_defaults(cls):
    return {
        'mest': {
            'interval': 31,  # ΔT
            'mutation_rates': (0.2, 0.1, 0.0),  # m per phase
            'decay_fractions': (0.5625, 0.75),  # of num_train_steps
            'grad_coefficient': 0.0,  # λ
        }
    }

  @classmethod
  def smoke_overrides(cls, num_steps):
    del num_steps
    return {'mest.interval': 1}

  @classmethod
  def from_config(cls, config: Any) -> 'Mest':
    block = config.mest
    fractions = tuple(block.decay_fractions)
    for fraction in fractions:
      checks.require_in_range('mest.decay_fractions', fraction, 0.0, 1.0)
    checks.require(
        list(fractions) == sorted(fractions),
        'mest.decay_fractions',
        f'must be increasing, got {fractions!r}',
    )
    checks.require_positive_int('mest.interval', block.interval)
    return cls(
        interval=int(block.interval),
        mutation_rates=tuple(float(r) for r in block.mutation_rates),
        decay_steps=tuple(int(f * config.num_train_steps) for f in fractions),
        grad_coefficient=block.grad_coefficient,
    )

  # -- Schedule --------------------------------------------------------------

  def mutation_rate(self, step: Any) -> Any:
    """m_t: the rate of the phase ``step`` is in (Python or traced)."""
    rate = self.mutation_rates[0]
    for begin, next_rate in zip(self.decay_steps, self.mutation_rates[1:]):
      if isinstance(step, numbers.Integral):
        rate = next_rate if step >= begin else rate
      else:
        rate = jnp.where(step >= begin, next_rate, rate)
    return rate

  def is_update_step(self, step: Any) -> Any:
    return (step % self.interval == 0) & (self.mutation_rate(step) > 0)

  # -- Training --------------------------------------------------------------

  def init_masks(self, rng, params, sparsities):
    return masks_lib.map_masks(
        lambda s, p, seed: None
        if s is None
        else self.structure.random_mask(jnp.abs(p), s, seed),
        sparsities,
        params,
        masks_lib.tie_seeds(rng, sparsities),
    )

  def update_masks(self, rng, step, params, grads, masks, state):
    del state
    rate = self.mutation_rate(step)
    score_rng, tie_rng = jax.random.split(rng)
    growth = masks_lib.random_scores(score_rng, masks, params)

    def layer(mask, weights, grad, grow, seed):
      if mask is None:
        return None
      num_swap = jnp.floor(rate * jnp.sum(mask)).astype(jnp.int32)
      drop = jnp.abs(weights) + self.grad_coefficient * jnp.abs(grad)
      return self.structure.drop_and_grow(mask, drop, grow, num_swap, seed)

    return masks_lib.map_masks(
        layer,
        masks,
        params,
        grads,
        growth,
        masks_lib.tie_seeds(tie_rng, masks),
    )


METHOD = Mest
