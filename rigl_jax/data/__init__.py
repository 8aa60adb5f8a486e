"""Input pipelines, one module per data set, imported by name when used.

Each module defines:

- ``create_pipeline(config, *, process_index, process_count)``: its
  ``pipeline.Pipeline``;
- ``example_spec(dataset_config)``: the shapes and dtypes of one example's
  features in a batch;
- ``preprocess_on_device(batch, rng, train)``: the part of preprocessing
  that runs in the jitted step, from features to the model's 'inputs',
  'labels' and per-label 'weights';
- ``IN_MEMORY``: whether the training split is held in memory (and so can
  be held on the devices).
"""

import importlib
from types import ModuleType
from typing import Any, Callable

import jax
import numpy as np

from rigl_jax.data import pipeline
from rigl_jax.sparse import checks

DATASETS = {
    'cifar10': 'rigl_jax.data.cifar10',
    'imagenet2012': 'rigl_jax.data.imagenet',
    'mnist': 'rigl_jax.data.mnist',
    'tiny_shakespeare': 'rigl_jax.data.tiny_shakespeare',
    'wikitext103': 'rigl_jax.data.wikitext103',
}

# (batch, rng, train) -> batch of model inputs, inside the jitted step.
DevicePreprocess = Callable[[dict[str, Any], Any, bool], dict[str, Any]]


def dataset_module(name: str) -> ModuleType:
  """The module of the data set ``name``."""
  checks.require(
      name in DATASETS,
      'dataset.name',
      f'must be one of {sorted(DATASETS)}, got {name!r}',
  )
  return importlib.import_module(DATASETS[name])


def create_pipeline(
    config: Any, *, process_index: int = 0, process_count: int = 1
) -> pipeline.Pipeline:
  """The input pipeline named by ``config.dataset.name``."""
  return dataset_module(config.dataset.name).create_pipeline(
      config, process_index=process_index, process_count=process_count
  )


def device_preprocess(name: str) -> DevicePreprocess:
  """The on-device preprocessing of the data set ``name``."""
  return dataset_module(name).preprocess_on_device


def batch_shapes(
    dataset_config: Any, batch_size: int
) -> dict[str, jax.ShapeDtypeStruct]:
  """Shapes and dtypes of a pipeline's batch of ``batch_size`` examples."""
  spec = dataset_module(dataset_config.name).example_spec(dataset_config)
  shapes = {
      k: jax.ShapeDtypeStruct((batch_size,) + v.shape, v.dtype)
      for k, v in spec.items()
  }
  shapes['weights'] = jax.ShapeDtypeStruct((batch_size,), np.float32)
  return shapes


def is_in_memory(name: str) -> bool:
  return dataset_module(name).IN_MEMORY


def random_batch(
    dataset_config: Any,
    batch_size: int,
    num_classes: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
  """A batch of the pipeline's shapes and dtypes with random values.

  For benchmarks and tests: integer features below 256 (pixels, bytes),
  labels below ``num_classes``, full-length text windows, weights 1.
  """
  batch = {}
  for key, shape in batch_shapes(dataset_config, batch_size).items():
    if key == 'weights':
      batch[key] = np.ones(shape.shape, shape.dtype)
    elif key == 'length':
      batch[key] = np.full(
          shape.shape, dataset_config.sequence_length + 1, shape.dtype
      )
    else:
      high = num_classes if key == 'labels' else 256
      batch[key] = rng.integers(0, high, shape.shape).astype(shape.dtype)
  return batch
