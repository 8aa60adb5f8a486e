"""RigL (Evci et al. 2020): drop by magnitude, grow by |dense gradient|."""

import dataclasses

import jax.numpy as jnp

from rigl_jax.sparse import flops
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse.methods import drop_and_grow


def train_flops(
    sparse_flops: float,
    dense_flops: float,
    *,
    num_steps: int,
    begin_step: int,
    end_step: int,
    interval: int,
) -> float:
  """Per-example FLOPs of a RigL run.

  While begin <= t < T_end one step in ΔT + 1 computes the dense gradient
  (2 f_S + f_D), the others are sparse (3 f_S); after T_end every step is
  sparse (paper, appendix H).
  """
  updating = max(0, min(end_step, num_steps) - begin_step)
  per_step_while_updating = (
      flops.sparse_step(sparse_flops) * interval
      + flops.dense_gradient_step(sparse_flops, dense_flops)
  ) / (interval + 1)
  return updating * per_step_while_updating + (
      num_steps - updating
  ) * flops.sparse_step(sparse_flops)


@dataclasses.dataclass(frozen=True)
class RigL(drop_and_grow.DropAndGrowMethod):
  """Rigged Lottery: grows the inactive entries with the largest |gradient|.

  As in the paper's Algorithm 1, an update step applies no optimizer step
  unless ``skip_optimizer`` is set to False. Grown connections may also
  start from the dense gradient ('grad_scale') or its sign ('grad_sign'),
  as in the reference's ``SparseRigLOptimizerBase.get_grow_tensor``.

  Step accounting differs from the reference. Here an update step is a
  training step: it advances the step count, the data and the
  learning-rate schedule without an optimizer step, so N steps with U
  updates make N - U optimizer steps. In the reference
  (``SparseRigLOptimizerBase.apply_gradients``) the update branch of its
  ``tf.cond`` does not call the optimizer, so the global step does not
  advance: N optimizer steps take N + U iterations, and its learning-rate
  boundaries count optimizer steps only. With ΔT = 100 until T_end, U is 1%
  of the steps before T_end (750 for WRN-22-2's T_end = 75,000), so here
  each boundary before T_end comes after up to 1% fewer optimizer steps.
  """

  name = 'rigl'
  display_name = 'RigL'
  default_skip_optimizer = True
  grow_inits = drop_and_grow.GROW_INITS + drop_and_grow.GRADIENT_GROW_INITS

  def train_flops(self, costs: flops.RunCosts) -> float:
    schedule = self.update_schedule
    return train_flops(
        costs.sparse_flops,
        costs.dense_flops,
        num_steps=costs.num_steps,
        begin_step=schedule.begin_step,
        end_step=schedule.end_step,
        interval=schedule.interval,
    )

  def grow_scores(self, rng, params, grads, masks, state):
    del rng, params, state
    return masks_lib.map_masks(
        lambda m, g: None if m is None else jnp.abs(g), masks, grads
    )


METHOD = RigL
