"""The optax optimizer and learning-rate schedule of a run config.

Both check the values they read and raise ``checks.InvalidArgument`` naming
the config key.
"""

from collections.abc import Callable
import math
import re
from typing import Any, Optional

import jax
import ml_collections
import numpy as np
import optax

from rigl_jax.sparse import checks
from rigl_jax.sparse import transforms
from rigl_jax.sparse import tree_paths

OPTIMIZERS = ('sgd', 'momentum', 'adam', 'adamw')
LR_SCHEDULES = ('constant', 'piecewise', 'cosine')
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _finite(value: Any) -> bool:
  """A real number that float32 holds without overflow."""
  return (
      isinstance(value, (int, float))
      and not isinstance(value, bool)
      and math.isfinite(value)
      and abs(value) <= _FLOAT32_MAX
  )


def _check_schedule(config: ml_collections.ConfigDict) -> None:
  schedule = config.lr_schedule
  checks.require(
      schedule.name in LR_SCHEDULES,
      'lr_schedule.name',
      f'must be one of {LR_SCHEDULES}, got {schedule.name!r}',
  )
  checks.require(
      isinstance(schedule.warmup_steps, int) and schedule.warmup_steps >= 0,
      'lr_schedule.warmup_steps',
      f'must be an integer >= 0, got {schedule.warmup_steps!r}',
  )
  boundaries = list(schedule.boundaries)
  checks.require(
      all(isinstance(b, int) for b in boundaries)
      and boundaries == sorted(set(boundaries))
      and all(b >= schedule.warmup_steps for b in boundaries),
      'lr_schedule.boundaries',
      'must be increasing integer steps, none inside the warm-up '
      f'({schedule.warmup_steps}), got {tuple(boundaries)!r}',
  )
  checks.require(
      _finite(schedule.decay_factor) and schedule.decay_factor > 0,
      'lr_schedule.decay_factor',
      f'must be a positive number, got {schedule.decay_factor!r}',
  )


def learning_rate_schedule(config: ml_collections.ConfigDict) -> optax.Schedule:
  """Warm-up (linear from 0) followed by a constant, piecewise or cosine rate.

  Boundaries of the piecewise schedule are absolute steps.
  """
  _check_schedule(config)
  base = config.optimizer.learning_rate
  checks.require(
      _finite(base) and base > 0,
      'optimizer.learning_rate',
      f'must be a positive number within float32, got {base!r}',
  )
  schedule = config.lr_schedule
  warmup = schedule.warmup_steps
  if schedule.name == 'constant':
    main = optax.constant_schedule(base)
  elif schedule.name == 'piecewise':
    main = optax.piecewise_constant_schedule(
        base, {b - warmup: schedule.decay_factor for b in schedule.boundaries}
    )
  else:
    main = optax.cosine_decay_schedule(
        base, max(1, config.num_train_steps - warmup)
    )
  if not warmup:
    return main
  return optax.join_schedules(
      [optax.linear_schedule(0.0, base, warmup), main], [warmup]
  )


def _regularized(exclude: tuple[str, ...]) -> Callable[[Any], Any]:
  """L2 and weight decay apply to kernels and embeddings, not to biases,
  nor to parameters whose path matches a regex of ``exclude``."""
  patterns = [re.compile(pattern) for pattern in exclude]

  def mask(params):
    return jax.tree_util.tree_map_with_path(
        lambda path, p: p.ndim >= 2
        and not any(
            pattern.search(tree_paths.key_path_to_str(path))
            for pattern in patterns
        ),
        params,
    )

  return mask


def create_optimizer(
    config: ml_collections.ConfigDict,
    learning_rate: Optional[optax.Schedule] = None,
) -> optax.GradientTransformationExtraArgs:
  """Clipping, L2 and the optimizer named by ``config.optimizer.name``.

  ``learning_rate`` is the config's schedule (``learning_rate_schedule``),
  built here when not given.

  The optimizers are optax's own chains (``optax.sgd`` is ``trace`` then a
  learning rate, ``optax.adamw`` is ``scale_by_adam``, decay, learning rate),
  with the learning rate read at the global step: ``update`` needs
  ``step=`` as an extra argument, as ``TrainState`` passes it.
  """
  opt = config.optimizer
  checks.require(
      opt.name in OPTIMIZERS,
      'optimizer.name',
      f'must be one of {OPTIMIZERS}, got {opt.name!r}',
  )
  for key in ('l2', 'weight_decay', 'grad_clip_value', 'grad_clip_norm'):
    checks.require(
        _finite(opt[key]) and opt[key] >= 0,
        f'optimizer.{key}',
        f'must be a number >= 0, got {opt[key]!r}',
    )
  checks.require(
      _finite(opt.momentum) and 0 <= opt.momentum < 1,
      'optimizer.momentum',
      f'must be in [0, 1), got {opt.momentum!r}',
  )
  exclude = tuple(opt.l2_exclude)
  for pattern in exclude:
    try:
      re.compile(pattern)
    except (re.error, TypeError) as e:
      raise checks.InvalidArgument(
          'optimizer.l2_exclude', f'{pattern!r} is not a regex: {e}'
      ) from None
  regularized = _regularized(exclude)
  parts = []
  if opt.grad_clip_value > 0:
    parts.append(optax.clip(opt.grad_clip_value))
  if opt.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(opt.grad_clip_norm))
  if opt.l2 > 0:
    parts.append(optax.add_decayed_weights(opt.l2, mask=regularized))
  if opt.name == 'momentum':
    parts.append(optax.trace(decay=opt.momentum, nesterov=opt.nesterov))
  elif opt.name in ('adam', 'adamw'):
    parts.append(optax.scale_by_adam())
    if opt.name == 'adamw':
      parts.append(
          optax.add_decayed_weights(opt.weight_decay, mask=regularized)
      )
  if learning_rate is None:
    learning_rate = learning_rate_schedule(config)
  parts.append(transforms.scale_by_schedule_at_step(learning_rate))
  return optax.chain(*parts)
