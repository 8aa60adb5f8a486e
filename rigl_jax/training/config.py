"""Run configs: every key with its default, argument parsing, resolution.

Experiment files in ``configs/`` start from ``base_config()`` and change
what their experiment needs, so every key the code reads exists: the
runner's keys are here, each method's block comes from the method itself
(``SparseMethod.config_defaults``). Which of them make a run's identity is
``rigl_jax.training.identity``. ``resolve`` checks the runner's keys and
returns a copy with the training multiplier applied to every step anchor;
everything else is checked where it is built (``rigl_jax.training.build``),
with errors reported as ``config.<key>: ...``.
"""

import ast
import contextlib
import copy
import importlib.util
import math
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Optional

import ml_collections

from rigl_jax import data
from rigl_jax import errors
from rigl_jax.sparse import checks
from rigl_jax.sparse import methods
from rigl_jax.sparse import schedules
from rigl_jax.sparse.methods import base as methods_base

ConfigError = errors.ConfigError


@contextlib.contextmanager
def as_config_errors() -> Iterator[None]:
  """Turns ``InvalidArgument`` of the core into ``config.<key>: ...``."""
  try:
    yield
  except checks.InvalidArgument as e:
    raise ConfigError(f'config.{e.name}: {e.message}') from None


def _method_blocks() -> dict[str, ml_collections.ConfigDict]:
  """Every method's config blocks; methods sharing a block agree on it."""
  blocks = {}
  for method in methods.METHODS.values():
    for name, defaults in method.config_defaults().items():
      if name in blocks and blocks[name] != defaults:
        raise TypeError(f'methods disagree on the defaults of {name!r}')
      blocks[name] = defaults
  return {
      name: ml_collections.ConfigDict(
          {
              key: (
                  ml_collections.config_dict.placeholder(value.type)
                  if isinstance(value, methods_base.Unset)
                  else value
              )
              for key, value in defaults.items()
          }
      )
      for name, defaults in blocks.items()
  }


def base_config() -> ml_collections.ConfigDict:
  """All keys a run reads, with neutral defaults: the runner's and every
  method's blocks."""
  config = runner_config()
  # The blocks of every method (mask_update, snfs, snip, pruning, ...).
  for name, block in _method_blocks().items():
    config[name] = block
  return config


def _dataset_block() -> ml_collections.ConfigDict:
  dataset = ml_collections.ConfigDict()
  dataset.name = 'mnist'
  dataset.local_dir = ''
  dataset.tfds_data_dir = ''
  # Grain worker processes that load batches; 0 loads them in a thread of
  # the training process (best for data sets held in memory).
  dataset.num_workers = 0
  # Hold an in-memory training set on the devices and gather each batch
  # there (no transfer per step); False streams batches from the host.
  dataset.device_resident = True
  # Each data set's own keys (e.g. sequence_length, image_size), declared
  # by its module.
  for key, default in data.all_config_keys().items():
    dataset[key] = default
  return dataset


def _model_block() -> ml_collections.ConfigDict:
  model = ml_collections.ConfigDict()
  model.name = 'lenet300_100'
  model.width = 1.0
  # The width of the dense model that FLOPs ratios compare with (None: the
  # model's own); 1.0 for the paper's Big-Sparse models.
  model.reference_width = ml_collections.config_dict.placeholder(float)
  # Extra keyword arguments of the model's constructor.
  model.options = ml_collections.ConfigDict()
  return model


def _optimizer_block() -> ml_collections.ConfigDict:
  optimizer = ml_collections.ConfigDict()
  optimizer.name = 'momentum'
  optimizer.learning_rate = 0.1
  optimizer.momentum = 0.9
  optimizer.nesterov = False
  optimizer.l2 = 0.0  # added to the gradients of kernels (ndim >= 2)
  # Regexes of parameter paths exempt from L2 and weight decay.
  optimizer.l2_exclude = ()
  optimizer.weight_decay = 0.0  # decoupled, adamw only
  optimizer.grad_clip_value = 0.0  # 0 disables
  optimizer.grad_clip_norm = 0.0  # 0 disables
  return optimizer


def runner_config() -> ml_collections.ConfigDict:
  """The keys of the runner: all but the methods' own blocks."""
  config = ml_collections.ConfigDict()
  config.method = 'rigl'
  config.sparsity = 0.9
  config.distribution = 'erk'
  # Ordered (regex, value) rules for kernels, first match deciding: 'dense',
  # a fixed sparsity, or 'distributed'. Under 'uniform' the model's first
  # layer stays dense unless a rule matches it (rigl_jax.sparse.distributions).
  config.layer_sparsity = ()
  config.erk_power_scale = 1.0
  # How each sparse kernel's active weights are spread
  # (rigl_jax.sparse.structure): 'unstructured'; 'n_m', N active in every M
  # consecutive inputs; 'fan_in', the same number of inputs per output unit.
  config.mask_structure = ml_collections.ConfigDict(
      {'kind': 'unstructured', 'n': 2, 'm': 4}
  )
  config.training_multiplier = 1.0
  config.num_train_steps = 1000
  config.batch_size = 128
  config.eval_batch_size = 1000
  config.seed = 0
  config.label_smoothing = 0.0
  # Mixed precision: bfloat16 activations and matmuls; params, masks,
  # optimizer state, gradients and drop/grow scores stay float32.
  config.half_precision = False

  config.dataset = _dataset_block()
  config.model = _model_block()
  config.optimizer = _optimizer_block()
  config.lr_schedule = ml_collections.ConfigDict()
  config.lr_schedule.name = 'constant'
  config.lr_schedule.warmup_steps = 0
  config.lr_schedule.boundaries = ()  # steps, for 'piecewise'
  config.lr_schedule.decay_factor = 0.1  # multiplies the rate at each one

  # Start from other runs' checkpoints (rigl_jax/training/warm_start.py).
  config.warm_start = ml_collections.ConfigDict(
      {
          'workdir': '',
          'optimizer_state': False,
          'masks_from': '',
          'init_seed': ml_collections.config_dict.placeholder(int),
      }
  )

  config.log_every_steps = 100
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 2
  return config


def parse_value(text: str) -> Any:
  """A Python literal, or the text itself (as ``key=value`` overrides)."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def load_module(path: str) -> Any:
  """Executes the Python file ``path`` and returns it as a module.

  Configs share code this way (``configs/_imagenet_common.py``) without
  putting the configs folder on ``sys.path``.

  Raises:
    ConfigError: the file does not exist.
  """
  if not os.path.exists(path):
    raise ConfigError(f'{path}: config file not found')
  name = os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(f'rigl_jax_config_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_sibling(config_file: str, name: str) -> Any:
  """The config module ``name``.py next to ``config_file`` (a __file__)."""
  return load_module(
      os.path.join(os.path.dirname(os.path.abspath(config_file)), f'{name}.py')
  )


def load(path_and_arg: str) -> ml_collections.ConfigDict:
  """Loads ``configs/<name>.py[:arg]`` as ``--config`` does, from Python.

  Raises:
    ConfigError: the file does not exist or defines no ``get_config``.
  """
  path, _, arg = path_and_arg.partition(':')
  module = load_module(path)
  if not hasattr(module, 'get_config'):
    raise ConfigError(f'{path}: a config file defines get_config(arg)')
  return module.get_config(arg)


def load_relative(
    config_file: str, path_and_arg: str
) -> ml_collections.ConfigDict:
  """Loads ``path_and_arg`` relative to ``config_file`` (a __file__)."""
  return load(
      os.path.join(os.path.dirname(os.path.abspath(config_file)), path_and_arg)
  )


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
    variants: Optional[
        Mapping[str, Callable[[ml_collections.ConfigDict], None]]
    ] = None,
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
        raise ConfigError(
            f'config argument {item!r} is neither key=value nor '
            f'a variant ({", ".join(sorted(variants)) or "none"})'
        )
      variants[item](config)
      continue
    set_values(config, {key.strip(): parse_value(value.strip())})
  return config


def set_values(
    config: ml_collections.ConfigDict, values: Mapping[str, Any]
) -> ml_collections.ConfigDict:
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


def shrink_for_smoke_test(
    config: ml_collections.ConfigDict, *, batch_size: int = 8
) -> None:
  """Two steps with every schedule compressed into them (for tests).

  Every method's schedules start at step 0 (a topology update at step 0,
  pruning at steps 0 and 1); evaluation and a checkpoint at the end.
  """
  num_steps = 2
  config.num_train_steps = num_steps
  config.training_multiplier = 1.0
  config.batch_size = batch_size
  config.eval_batch_size = batch_size
  for method in methods.METHODS.values():
    set_values(config, method.smoke_overrides(num_steps))
  config.lr_schedule.warmup_steps = min(config.lr_schedule.warmup_steps, 1)
  boundaries = config.lr_schedule.boundaries
  config.lr_schedule.boundaries = (1,) if boundaries else ()
  config.log_every_steps = 1
  config.eval_every_steps = num_steps
  config.checkpoint_every_steps = num_steps


# The most steps a run can have: the train state counts them in an int32.
MAX_STEPS = 2**31 - 1


def _require(condition: bool, key: str, message: str) -> None:
  if not condition:
    raise ConfigError(f'config.{key}: {message}')


def _is_number(value: Any) -> bool:
  return (
      isinstance(value, (int, float))
      and not isinstance(value, bool)
      and math.isfinite(value)
  )


def _validate_counts(config: ml_collections.ConfigDict) -> None:
  """Step counts, intervals and batch sizes: positive integers in range."""
  for key in (
      'num_train_steps',
      'batch_size',
      'eval_batch_size',
      'log_every_steps',
      'eval_every_steps',
      'checkpoint_every_steps',
      'keep_checkpoints',
  ):
    _require(
        _is_number(config[key])
        and int(config[key]) == config[key]
        and config[key] > 0,
        key,
        f'must be a positive integer, got {config[key]!r}',
    )
  # The train state counts steps in an int32.
  _require(
      config.num_train_steps <= MAX_STEPS,
      'num_train_steps',
      f'must be at most {MAX_STEPS}, got {config.num_train_steps!r}',
  )
  scaled = config.num_train_steps * config.training_multiplier
  _require(
      scaled <= MAX_STEPS,
      'training_multiplier',
      f'{config.training_multiplier!r} makes num_train_steps {scaled:.4g}, '
      f'more than {MAX_STEPS}',
  )


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks the runner's own keys; raises ``ConfigError`` naming the key.

  The method's block, the sparsity and its distribution, the model and the
  data set are checked where they are built (``training.build``).
  """
  _require(
      config.method in methods.METHODS,
      'method',
      f'must be one of {sorted(methods.METHODS)}, got {config.method!r}',
  )
  _require(
      _is_number(config.training_multiplier) and config.training_multiplier > 0,
      'training_multiplier',
      f'must be positive, got {config.training_multiplier!r}',
  )
  _validate_counts(config)
  _require(
      isinstance(config.dataset.num_workers, int)
      and config.dataset.num_workers >= 0,
      'dataset.num_workers',
      f'must be an integer >= 0, got {config.dataset.num_workers!r}',
  )
  _require(
      _is_number(config.label_smoothing)
      and 0.0 <= config.label_smoothing < 1.0,
      'label_smoothing',
      f'must be in [0, 1), got {config.label_smoothing!r}',
  )
  _require(
      isinstance(config.half_precision, bool),
      'half_precision',
      f'must be True or False, got {config.half_precision!r}',
  )
  _require(
      config.seed == int(config.seed),
      'seed',
      f'must be an integer, got {config.seed!r}',
  )


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A validated copy with the training multiplier applied.

  The multiplier M scales the number of steps, every method's step anchors
  (T_end, the pruning steps) and every learning-rate anchor (warm-up and
  boundaries), so a 5x run keeps the shape of the 1x schedule.
  """
  validate(config)
  resolved = copy.deepcopy(config)
  multiplier = config.training_multiplier
  scale = lambda steps: schedules.scale_steps(steps, multiplier)
  step_keys = ['num_train_steps', 'lr_schedule.warmup_steps'] + [
      key
      for method in methods.METHODS.values()
      for key in method.scaled_step_keys
  ]
  with resolved.unlocked():
    set_values(
        resolved,
        {key: scale(_get(config, key)) for key in dict.fromkeys(step_keys)},
    )
    resolved.lr_schedule.boundaries = tuple(
        scale(b) for b in config.lr_schedule.boundaries
    )
  return resolved


def _get(config: ml_collections.ConfigDict, key: str) -> Any:
  value = config
  for part in key.split('.'):
    value = value[part]
  return value
