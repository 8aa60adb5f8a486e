"""Run configs: every key with its default, argument parsing, resolution.

Experiment files in ``configs/`` start from ``base_config()`` and change
what their experiment needs, so every key the code reads exists. Before a
run, ``resolve`` checks the config and returns a copy with the training
multiplier applied to every step anchor.
"""

import ast
import copy
import importlib.util
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import ml_collections

from rigl_jax.data import specs as dataset_specs
from rigl_jax.sparse import distributions
from rigl_jax import errors
from rigl_jax.sparse import methods
from rigl_jax import models
from rigl_jax.sparse import schedules
from rigl_jax.sparse.methods import drop_and_grow

OPTIMIZERS = ('sgd', 'momentum', 'adam', 'adamw')
LR_SCHEDULES = ('constant', 'piecewise', 'cosine')


ConfigError = errors.ConfigError


def base_config() -> ml_collections.ConfigDict:
  """All keys a run reads, with neutral defaults."""
  config = ml_collections.ConfigDict()
  config.method = 'rigl'
  config.sparsity = 0.9
  config.distribution = 'erk'
  # Regexes of parameter paths that stay dense under every distribution.
  config.dense_layers = ()
  # Extra regexes kept dense only under the uniform distribution (the
  # paper keeps the first layer dense there, but sparsifies it under ERK).
  config.uniform_dense_layers = ()
  # 'regex:sparsity' strings; matching layers keep that sparsity and are left
  # out of the distribution's budget.
  config.custom_sparsities = ()
  config.erk_power_scale = 1.0
  config.training_multiplier = 1.0
  config.num_train_steps = 1000
  config.batch_size = 128
  config.eval_batch_size = 1000
  config.seed = 0
  config.label_smoothing = 0.0

  config.mask_update = ml_collections.ConfigDict()
  config.mask_update.begin_step = 0
  config.mask_update.end_step = 750  # T_end
  config.mask_update.interval = 100  # ΔT
  config.mask_update.drop_fraction = 0.3  # α
  config.mask_update.schedule = 'cosine'
  config.mask_update.power = 1.0  # k of the inverse_power schedule
  # None: the method's default (RigL skips the optimizer step, as in the
  # paper; SET and SNFS take it before changing the topology).
  config.mask_update.skip_optimizer_step = ml_collections.config_dict.placeholder(
      bool)

  config.snfs = ml_collections.ConfigDict()
  config.snfs.momentum = 0.9
  config.snfs.redistribute = False
  config.snip = ml_collections.ConfigDict()
  config.snip.global_ranking = False
  config.pruning = ml_collections.ConfigDict()
  config.pruning.begin_step = 0
  config.pruning.end_step = 750
  config.pruning.frequency = 100
  config.pruning.initial_sparsity = 0.0

  config.dataset = ml_collections.ConfigDict()
  config.dataset.name = 'mnist'
  config.dataset.local_dir = ''
  config.dataset.tfds_data_dir = ''
  config.dataset.sequence_length = 512  # language models: bytes per example
  config.dataset.image_size = 224  # ImageNet: training crop and eval size
  # Grain worker processes that load batches; 0 loads them in a thread of
  # the training process (best for data sets held in memory).
  config.dataset.num_workers = 0
  # Hold an in-memory training set on the devices and gather each batch
  # there (no transfer per step); False streams batches from the host.
  config.dataset.device_resident = True

  config.model = ml_collections.ConfigDict()
  config.model.name = 'lenet300_100'
  config.model.width = 1.0
  # Extra keyword arguments of the model's constructor.
  config.model.options = ml_collections.ConfigDict()

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = 'momentum'
  config.optimizer.learning_rate = 0.1
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = False
  config.optimizer.l2 = 0.0  # added to the gradients of kernels (ndim >= 2)
  config.optimizer.weight_decay = 0.0  # decoupled, adamw only
  config.optimizer.grad_clip_value = 0.0  # 0 disables
  config.optimizer.grad_clip_norm = 0.0  # 0 disables

  config.lr_schedule = ml_collections.ConfigDict()
  config.lr_schedule.name = 'constant'
  config.lr_schedule.warmup_steps = 0
  config.lr_schedule.boundaries = ()  # steps, for 'piecewise'
  config.lr_schedule.decay_factor = 0.1  # multiplies the rate at each one

  config.log_every_steps = 100
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 2
  return config


def _parse_value(text: str) -> Any:
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def load(path_and_arg: str) -> ml_collections.ConfigDict:
  """Loads ``configs/<name>.py[:arg]`` as ``--config`` does, from Python.

  Raises:
    ConfigError: the file does not exist or defines no ``get_config``.
  """
  path, _, arg = path_and_arg.partition(':')
  if not os.path.exists(path):
    raise ConfigError(f'{path}: config file not found')
  name = os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(f'rigl_jax_config_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, 'get_config'):
    raise ConfigError(f'{path}: a config file defines get_config(arg)')
  return module.get_config(arg)


def _split_top_level(text: str) -> list[str]:
  """Splits at commas outside brackets and quotes."""
  items, depth, quote, start = [], 0, '', 0
  for i, char in enumerate(text):
    if quote:
      quote = '' if char == quote else quote
    elif char in '\'"':
      quote = char
    elif char in '([{':
      depth += 1
    elif char in ')]}':
      depth -= 1
    elif char == ',' and depth == 0:
      items.append(text[start:i])
      start = i + 1
  items.append(text[start:])
  return [item.strip() for item in items if item.strip()]


def apply_arg(
    config: ml_collections.ConfigDict,
    arg: str,
    variants: Optional[Mapping[str, Callable[[ml_collections.ConfigDict],
                                             None]]] = None
) -> ml_collections.ConfigDict:
  """Applies a config argument: named variants and ``key=value`` overrides.

  ``'smoke,method=set'`` applies the variant ``variants['smoke']`` (which
  changes the config in place), then sets ``method``. Values are Python
  literals where they parse (``0.9``, ``True``, ``('a',)``) and strings
  otherwise; keys may be dotted (``mask_update.interval=50``).
  """
  variants = variants or {}
  for item in _split_top_level(arg):
    key, sep, value = item.partition('=')
    if not sep:
      if item not in variants:
        raise ConfigError(f'config argument {item!r} is neither key=value nor '
                          f'a variant ({", ".join(sorted(variants)) or "none"})')
      variants[item](config)
      continue
    set_values(config, {key.strip(): _parse_value(value.strip())})
  return config


def set_values(config: ml_collections.ConfigDict,
               values: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """Sets dotted keys, e.g. ``{'mask_update.interval': 50}``; returns config.

  Raises:
    ConfigError: a key names no existing field.
  """
  for key, value in values.items():
    *parents, leaf = key.split('.')
    node = config
    for part in parents:
      if not isinstance(node.get(part), ml_collections.ConfigDict):
        raise ConfigError(f'unknown key {key!r} in the config')
      node = node[part]
    if leaf not in node:
      raise ConfigError(f'unknown key {key!r} in the config')
    node[leaf] = value
  return config


def shrink_for_smoke_test(config: ml_collections.ConfigDict, *,
                          batch_size: int = 8) -> None:
  """A few steps with every schedule compressed into them (for tests).

  Two steps, with a topology update at step 0 and (pruning) at step 1, and
  evaluation and a checkpoint at the end.
  """
  config.num_train_steps = 2
  config.training_multiplier = 1.0
  config.batch_size = batch_size
  config.eval_batch_size = batch_size
  config.mask_update.begin_step = 0
  config.mask_update.end_step = 2
  config.mask_update.interval = 1
  config.pruning.begin_step = 0
  config.pruning.end_step = 1
  config.pruning.frequency = 1
  config.lr_schedule.warmup_steps = min(config.lr_schedule.warmup_steps, 1)
  boundaries = config.lr_schedule.boundaries
  config.lr_schedule.boundaries = (1,) if boundaries else ()
  config.log_every_steps = 1
  config.eval_every_steps = 2
  config.checkpoint_every_steps = 2


def parse_custom_sparsities(entries: Sequence[str]) -> dict[str, float]:
  """``('regex:0.5', ...)`` as a dict, for ``get_sparsities``."""
  result = {}
  for entry in entries:
    pattern, sep, value = str(entry).rpartition(':')
    try:
      result[pattern] = float(value)
    except ValueError:
      sep = ''
    if not sep or not pattern:
      raise ConfigError(f'custom_sparsities entry {entry!r} is not '
                        "'regex:sparsity'")
  return result


def effective_dense_layers(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """``dense_layers``, plus ``uniform_dense_layers`` under 'uniform'."""
  extra = (tuple(config.uniform_dense_layers)
           if config.distribution == 'uniform' else ())
  return tuple(config.dense_layers) + extra


def _require(condition: bool, key: str, message: str) -> None:
  if not condition:
    raise ConfigError(f'config.{key}: {message}')


def _validate_mask_update(config: ml_collections.ConfigDict) -> None:
  """Checks the drop-and-grow schedule (SET, SNFS, RigL)."""
  mask_update = config.mask_update
  _require(mask_update.interval > 0, 'mask_update.interval',
           f'must be a positive integer, got {mask_update.interval}')
  _require(0.0 < mask_update.drop_fraction <= 1.0, 'mask_update.drop_fraction',
           f'must be in (0, 1], got {mask_update.drop_fraction}')
  _require(mask_update.schedule in schedules.DROP_FRACTION_SCHEDULES,
           'mask_update.schedule',
           f'must be one of {schedules.DROP_FRACTION_SCHEDULES}, '
           f'got {mask_update.schedule!r}')
  _require(0 <= mask_update.begin_step < mask_update.end_step,
           'mask_update.end_step',
           f'must be greater than begin_step ({mask_update.begin_step}) '
           f'and begin_step >= 0, got {mask_update.end_step}')
  _require(mask_update.end_step <= config.num_train_steps,
           'mask_update.end_step',
           f'{mask_update.end_step} is beyond num_train_steps '
           f'({config.num_train_steps})')


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks values that need no model or data; raises ``ConfigError``."""
  _require(config.method in methods.METHODS, 'method',
           f'must be one of {sorted(methods.METHODS)}, got {config.method!r}')
  _require(0.0 <= config.sparsity < 1.0, 'sparsity',
           f'must be in [0, 1), got {config.sparsity}')
  method_class = methods.METHODS[config.method]
  _require(config.sparsity > 0.0 or not method_class.uses_masks, 'sparsity',
           f'method {config.method!r} trains sparse masks and needs a '
           'sparsity > 0')
  _require(config.distribution in distributions.DISTRIBUTIONS, 'distribution',
           f'must be one of {distributions.DISTRIBUTIONS}, '
           f'got {config.distribution!r}')
  _require(config.training_multiplier > 0, 'training_multiplier',
           f'must be positive, got {config.training_multiplier}')
  for key in ('num_train_steps', 'batch_size', 'eval_batch_size',
              'log_every_steps', 'eval_every_steps', 'checkpoint_every_steps',
              'keep_checkpoints'):
    _require(int(config[key]) == config[key] and config[key] > 0, key,
             f'must be a positive integer, got {config[key]}')
  _require(isinstance(config.dataset.num_workers, int) and
           config.dataset.num_workers >= 0, 'dataset.num_workers',
           f'must be an integer >= 0, got {config.dataset.num_workers!r}')
  _require(config.model.name in models.MODELS, 'model.name',
           f'must be one of {sorted(models.MODELS)}, '
           f'got {config.model.name!r}')
  _require(config.model.width > 0, 'model.width',
           f'must be positive, got {config.model.width}')
  _require(config.dataset.name in dataset_specs.names(), 'dataset.name',
           f'must be one of {list(dataset_specs.names())}, '
           f'got {config.dataset.name!r}')
  if issubclass(method_class, drop_and_grow.DropAndGrowMethod):
    _validate_mask_update(config)
  if config.method == 'pruning':
    pruning = config.pruning
    _require(0 <= pruning.begin_step < pruning.end_step, 'pruning.end_step',
             'must be greater than pruning.begin_step '
             f'({pruning.begin_step}), got {pruning.end_step}')
    _require(pruning.end_step <= config.num_train_steps, 'pruning.end_step',
             f'{pruning.end_step} is beyond num_train_steps '
             f'({config.num_train_steps})')
    _require(pruning.frequency > 0, 'pruning.frequency',
             f'must be a positive integer, got {pruning.frequency}')
  _require(config.optimizer.name in OPTIMIZERS, 'optimizer.name',
           f'must be one of {OPTIMIZERS}, got {config.optimizer.name!r}')
  _require(config.optimizer.learning_rate > 0, 'optimizer.learning_rate',
           f'must be positive, got {config.optimizer.learning_rate}')
  _require(config.lr_schedule.name in LR_SCHEDULES, 'lr_schedule.name',
           f'must be one of {LR_SCHEDULES}, got {config.lr_schedule.name!r}')
  _require(0.0 <= config.label_smoothing < 1.0, 'label_smoothing',
           f'must be in [0, 1), got {config.label_smoothing}')
  parse_custom_sparsities(config.custom_sparsities)


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A validated copy with the training multiplier applied.

  The multiplier M scales the number of steps, T_end, the pruning steps and
  every learning-rate anchor (warm-up and boundaries), so a 5x run keeps the
  shape of the 1x schedule.
  """
  resolved = copy.deepcopy(config)
  multiplier = config.training_multiplier
  scale = lambda steps: schedules.scale_steps(steps, multiplier)
  with resolved.unlocked():
    resolved.num_train_steps = scale(config.num_train_steps)
    resolved.mask_update.end_step = scale(config.mask_update.end_step)
    resolved.pruning.begin_step = scale(config.pruning.begin_step)
    resolved.pruning.end_step = scale(config.pruning.end_step)
    resolved.lr_schedule.warmup_steps = scale(config.lr_schedule.warmup_steps)
    resolved.lr_schedule.boundaries = tuple(
        scale(b) for b in config.lr_schedule.boundaries)
  validate(resolved)
  return resolved
