"""The optax optimizer and learning-rate schedule of a run config."""

import jax
import ml_collections
import optax


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
    config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Clipping, L2 and the optimizer named by ``config.optimizer.name``."""
  opt = config.optimizer
  learning_rate = learning_rate_schedule(config)
  parts = []
  if opt.grad_clip_value > 0:
    parts.append(optax.clip(opt.grad_clip_value))
  if opt.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(opt.grad_clip_norm))
  if opt.l2 > 0:
    parts.append(optax.add_decayed_weights(opt.l2, mask=_kernels))
  if opt.name == 'sgd':
    parts.append(optax.sgd(learning_rate))
  elif opt.name == 'momentum':
    parts.append(optax.sgd(learning_rate, momentum=opt.momentum,
                           nesterov=opt.nesterov))
  elif opt.name == 'adam':
    parts.append(optax.adam(learning_rate))
  elif opt.name == 'adamw':
    parts.append(optax.adamw(learning_rate, weight_decay=opt.weight_decay,
                             mask=_kernels))
  else:
    raise ValueError(f'config.optimizer.name: unknown optimizer {opt.name!r}')
  return optax.chain(*parts)
