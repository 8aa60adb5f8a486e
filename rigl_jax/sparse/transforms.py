"""optax gradient transformations for sparse training.

They receive what they need through optax's extra-args update, as
``TrainState`` calls it: ``tx.update(grads, opt_state, params, masks=masks,
step=step)``. ``sparse_optimizer`` wraps any optax optimizer (momentum,
Nesterov, Adam, AdamW, weight decay, clipping, ...) so that inactive weights
stay exactly zero; ``scale_by_schedule_at_step`` follows the global training
step, which keeps schedules on time when update steps skip the optimizer.
"""

from typing import Union

import jax.numpy as jnp
import optax

from rigl_jax.sparse import masks as masks_lib


def mask_updates() -> optax.GradientTransformationExtraArgs:
  """Zeroes the updates of inactive weights.

  The masks are passed as the extra argument ``masks``: a pytree with the
  params' structure, a bool array per sparse leaf and None per dense leaf.
  """

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None, *, masks=None, **extra_args):
    del params, extra_args
    if masks is None:
      raise ValueError(
          'mask_updates needs the masks: call '
          'tx.update(grads, state, params, masks=masks)'
      )
    updates = masks_lib.map_masks(
        lambda m, u: u if m is None else jnp.where(m, u, jnp.zeros_like(u)),
        masks,
        updates,
    )
    return updates, state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def sparse_optimizer(
    optimizer: optax.GradientTransformation,
) -> optax.GradientTransformationExtraArgs:
  """Wraps ``optimizer`` so that inactive weights stay exactly zero.

  Gradients are masked before the optimizer, so its statistics (momentum,
  Adam moments) only see active connections, and updates are masked after
  it, so terms that do not come from the gradient (weight decay, Nesterov)
  cannot move an inactive weight either.

  Args:
    optimizer: any optax gradient transformation.

  Returns:
    A transformation whose ``update`` requires ``masks=...``.
  """
  return optax.chain(mask_updates(), optimizer, mask_updates())


def scale_by_schedule_at_step(
    learning_rate: Union[float, optax.Schedule],
) -> optax.GradientTransformationExtraArgs:
  """Scales updates by ``-learning_rate(step)`` at the global step.

  optax's own schedules count the optimizer's updates; RigL's update steps
  apply none, so those counts would lag behind the training step and move
  every learning-rate boundary. This transformation reads the training step
  from the extra argument ``step`` instead.
  """
  schedule = (
      learning_rate
      if callable(learning_rate)
      else optax.constant_schedule(learning_rate)
  )

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None, *, step=None, **extra_args):
    del params, extra_args
    if step is None:
      raise ValueError(
          'scale_by_schedule_at_step needs the training step: call '
          'tx.update(grads, state, params, step=step)'
      )
    scale = -schedule(step)
    return optax.tree.scale(scale, updates), state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
