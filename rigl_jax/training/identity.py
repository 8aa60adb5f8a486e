"""A run's identity: the config keys that the run reads and that can change
its result.

Resume, the finished-run check, warm starts and report grouping compare
identities, never whole configs. Every method's block is in every config
(so a sweep can set any of them), but a run reads only its own method's
blocks and its own data set's keys: adding a method or a data set leaves
every existing run's identity as it was. A key that a stored config
predates reads as its default, since keys are added with defaults that
compute what the code computed before they existed; a key that the current
code does not know (a block of a method since removed) is read by no run.
"""

from collections.abc import Mapping
from typing import Any

from flax import traverse_util

from rigl_jax import data
from rigl_jax.sparse import checks
from rigl_jax.sparse import methods
from rigl_jax.training import config as config_lib

# Keys a resumed run may change: they do not change what training computes
# (num_train_steps extends a run; reference_width changes only reported
# ratios).
SAFE_TO_CHANGE = (
    'num_train_steps',
    'log_every_steps',
    'eval_every_steps',
    'checkpoint_every_steps',
    'keep_checkpoints',
    'eval_batch_size',
    'dataset.local_dir',
    'dataset.tfds_data_dir',
    'dataset.num_workers',
    'dataset.device_resident',
    'model.reference_width',
)

# What a method that does not read the sparsity (the dense baseline)
# ignores.
SPARSITY_KEYS = (
    'sparsity',
    'distribution',
    'layer_sparsity',
    'erk_power_scale',
)

Identity = dict[str, Any]


def _json_value(value: Any) -> Any:
  """Tuples as lists, recursively, as JSON stores them."""
  if isinstance(value, (tuple, list)):
    return [_json_value(v) for v in value]
  return value


def flatten(config: Any) -> dict[str, Any]:
  """{'a.b': value} of a config or nested dict, sequences as lists."""
  if hasattr(config, 'to_dict'):
    config = config.to_dict()
  flat = traverse_util.flatten_dict(dict(config), sep='.')
  return {key: _json_value(value) for key, value in flat.items()}


def _method_blocks(name: str) -> set[str]:
  method = methods.METHODS.get(name)
  return set(method.config_defaults()) if method else set()


def _dataset_keys(name: str) -> set[str]:
  """The data set's own keys; none for a data set unknown here."""
  try:
    return set(data.config_keys(name))
  except checks.InvalidArgument:
    return set()


def _reads(
    key: str, flat: Mapping[str, Any], runner: Mapping[str, Any]
) -> bool:
  """Whether a run of the config ``flat`` reads ``key``."""
  top, _, rest = key.partition('.')
  method = flat.get('method')
  if top in _method_blocks(method):
    return True
  if key in SPARSITY_KEYS:
    return methods.reads_sparsity(method)
  if top == 'dataset':  # Generic keys, and the data set's own.
    field = rest.split('.')[0]
    if field in data.all_config_keys():
      return field in _dataset_keys(flat.get('dataset.name'))
  if top == 'model':  # Options are the model's own; any may be set.
    return key in runner or rest.startswith('options.')
  return key in runner


def restrict(flat: Mapping[str, Any]) -> Identity:
  """The identity of the flat config ``flat`` (defaults fill what it lacks)."""
  runner = flatten(config_lib.runner_config())
  complete = {**flatten(config_lib.base_config()), **flat}
  return {
      key: value
      for key, value in sorted(complete.items())
      if key not in SAFE_TO_CHANGE and _reads(key, complete, runner)
  }


def of_config(config: Any) -> Identity:
  """The identity of a config (ConfigDict or nested dict, as results.json)."""
  return restrict(flatten(config))


def changes(
    saved: Mapping[str, Any], current: Mapping[str, Any]
) -> dict[str, tuple[Any, Any]]:
  """{key: (saved value, current value)} of every key that differs.

  Both are identities (or flat configs of any age, restricted here).
  """
  missing = 'absent'
  saved, current = restrict(saved), restrict(current)
  return {
      key: (saved.get(key, missing), current.get(key, missing))
      for key in sorted(set(saved) | set(current))
      if saved.get(key, missing) != current.get(key, missing)
  }
