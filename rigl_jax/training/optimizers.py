"""The optax optimizer and learning-rate schedule of a run config."""

import jax
import ml_collections
import optax

from rigl_jax.sparse import transforms


def learning_rate_schedule(
    config: ml_collections.ConfigDict) -> optax.Schedule:
  """Warm-up (linear from 0) followed by a constant, piecewise or cosine rate.

  Boundaries of the piecewise schedule are absolute steps.
  """
  base = config.optimizer.learning_rate
  schedule = config.lr_schedule
  warmup = schedule.warmup_steps
  if schedule.name == 'constant':
    main = optax.constant_schedule(base)
  elif schedule.name == 'piecewise':
    main = optax.piecewise_constant_schedule(
        base, {b - warmup: schedule.decay_factor
               for b in schedule.boundaries})
  else:
    main = optax.cosine_decay_schedule(
        base, max(1, config.num_train_steps - warmup))
  if not warmup:
    return main
  return optax.join_schedules(
      [optax.linear_schedule(0.0, base, warmup), main], [warmup])


def _kernels(params):
  """L2 and weight decay apply to kernels and embeddings, not to biases."""
  return jax.tree.map(lambda p: p.ndim >= 2, params)


def create_optimizer(
    config: ml_collections.ConfigDict) -> optax.GradientTransformationExtraArgs:
  """Clipping, L2 and the optimizer named by ``config.optimizer.name``.

  The optimizers are optax's own chains (``optax.sgd`` is ``trace`` then a
  learning rate, ``optax.adamw`` is ``scale_by_adam``, decay, learning rate),
  with the learning rate read at the global step: ``update`` needs
  ``step=`` as an extra argument, as ``TrainState`` passes it.
  """
  opt = config.optimizer
  parts = []
  if opt.grad_clip_value > 0:
    parts.append(optax.clip(opt.grad_clip_value))
  if opt.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(opt.grad_clip_norm))
  if opt.l2 > 0:
    parts.append(optax.add_decayed_weights(opt.l2, mask=_kernels))
  if opt.name == 'momentum':
    parts.append(optax.trace(decay=opt.momentum, nesterov=opt.nesterov))
  elif opt.name in ('adam', 'adamw'):
    parts.append(optax.scale_by_adam())
    if opt.name == 'adamw':
      parts.append(optax.add_decayed_weights(opt.weight_decay, mask=_kernels))
  elif opt.name != 'sgd':
    raise ValueError(f'config.optimizer.name: unknown optimizer {opt.name!r}')
  parts.append(transforms.scale_by_learning_rate(
      learning_rate_schedule(config)))
  return optax.chain(*parts)
