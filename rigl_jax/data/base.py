"""What a run needs to know of a data set, declared in the data set's module.

A data set module declares ``DATASET = base.Dataset(...)``;
``rigl_jax.data`` finds it by scanning the package, so adding a data set
touches no other file. Models are built (and FLOPs counted) from a
``DatasetSpec`` alone, known without loading any data.
"""

from collections.abc import Callable, Mapping
import dataclasses
from typing import Any

import jax

from rigl_jax.data import pipeline

# What a data set's labels are: a class per example, or the next token of
# a sequence.
TASKS = ('classification', 'language_model')

# ``config.dataset`` keys that every data set reads; ``Dataset.config_keys``
# lists a data set's others.
COMMON_CONFIG_KEYS = (
    'name',
    'local_dir',
    'tfds_data_dir',
    'num_workers',
    'device_resident',
)

# (batch, rng, train) -> batch of model inputs, inside the jitted step.
DevicePreprocess = Callable[[dict[str, Any], Any, bool], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """Shape (without batch) and dtype of 'inputs', and the number of classes.

  For language models ``num_classes`` is the vocabulary size and labels have
  the shape of the inputs.
  """

  input_shape: tuple[int, ...]
  input_dtype: Any
  num_classes: int
  task: str  # One of TASKS.


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A data set that ``config.dataset.name`` can name.

  Attributes:
    name: the registered name.
    task: one of ``TASKS``.
    num_classes: the number of classes (a language model's vocabulary).
    input_shape: shape of the model's 'inputs' per example, or a function of
      ``config.dataset`` giving it.
    input_dtype: dtype of the model's 'inputs'.
    in_memory: whether the training split is held in memory (and so can be
      held on the devices).
    create_pipeline: ``(config, *, process_index, process_count)`` to the
      run's ``pipeline.Pipeline``.
    example_spec: ``config.dataset`` to the shapes and dtypes of one
      example's features in a batch.
    preprocess_on_device: the preprocessing that runs in the jitted step,
      from features to the model's 'inputs', 'labels' and per-label
      'weights'.
    config_keys: the ``config.dataset`` keys it reads besides
      ``COMMON_CONFIG_KEYS``, with their defaults.
  """

  name: str
  task: str
  num_classes: int
  input_shape: tuple[int, ...] | Callable[[Any], tuple[int, ...]]
  input_dtype: Any
  in_memory: bool
  create_pipeline: Callable[..., pipeline.Pipeline]
  example_spec: Callable[[Any], dict[str, jax.ShapeDtypeStruct]]
  preprocess_on_device: DevicePreprocess
  config_keys: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def spec(self, dataset_config: Any) -> DatasetSpec:
    """What ``config.dataset`` feeds the model."""
    shape = self.input_shape
    if callable(shape):
      shape = shape(dataset_config)
    return DatasetSpec(
        tuple(shape), self.input_dtype, self.num_classes, self.task
    )


def _field_problem(dataset: Dataset) -> str | None:
  """What is wrong with one of ``dataset``'s fields, or None."""
  if dataset.task not in TASKS:
    return f'task must be one of {list(TASKS)}, got {dataset.task!r}'
  if not (isinstance(dataset.num_classes, int) and dataset.num_classes > 0):
    return f'num_classes must be a positive int, got {dataset.num_classes!r}'
  if not isinstance(dataset.in_memory, bool):
    return f'in_memory must be a bool, got {dataset.in_memory!r}'
  for field in ('create_pipeline', 'example_spec', 'preprocess_on_device'):
    if not callable(getattr(dataset, field)):
      return f'{field} must be callable, got {getattr(dataset, field)!r}'
  if not isinstance(dataset.config_keys, Mapping):
    return f'config_keys must be a mapping, got {dataset.config_keys!r}'
  common = sorted(set(dataset.config_keys) & set(COMMON_CONFIG_KEYS))
  if common:
    return f'config_keys {common} are read by every data set'
  return None


def problem(dataset: Any) -> str | None:
  """What makes ``dataset`` an unusable declaration, or None."""
  if not isinstance(dataset, Dataset):
    return f'must be a rigl_jax.data.base.Dataset, got {dataset!r}'
  if not (isinstance(dataset.name, str) and dataset.name):
    return f'name must be a non-empty string, got {dataset.name!r}'
  field_problem = _field_problem(dataset)
  return f'{dataset.name}: {field_problem}' if field_problem else None
