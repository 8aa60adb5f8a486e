"""Input pipelines, one module per data set, each declaring itself.

Every module of this package that defines ``DATASET`` (a ``base.Dataset``)
provides that data set: adding a data set is adding its module, which must
stay cheap to import (TensorFlow only inside functions). A
``config.dataset.name`` that is not registered but holds a dot names a
module outside the package (``my_project.toy_data``) whose ``DATASET`` is
used, so data sets can live in their own package.
"""

from types import ModuleType
from typing import Any

import jax
import numpy as np

from rigl_jax.data import base
from rigl_jax.data import pipeline
from rigl_jax.sparse import registry

Dataset = base.Dataset
DatasetSpec = base.DatasetSpec
DevicePreprocess = base.DevicePreprocess


def _declared(module: ModuleType) -> tuple[base.Dataset, ...]:
  """The data set ``module`` declares, if any; TypeError naming it if bad."""
  dataset = getattr(module, 'DATASET', None)
  if dataset is None:
    return ()
  problem = base.problem(dataset)
  if problem:
    raise TypeError(f'{module.__name__}.DATASET: {problem}')
  return (dataset,)


def _merge_config_keys(datasets: Any) -> dict[str, Any]:
  """{key: default} of all ``datasets``; TypeError where defaults differ."""
  merged = {}
  for dataset in datasets:
    for key, default in dataset.config_keys.items():
      if key in merged and merged[key] != default:
        raise TypeError(
            f'data sets disagree on the default of config.dataset.{key}: '
            f'{merged[key]!r} and {default!r} ({dataset.name})'
        )
      merged[key] = default
  return dict(sorted(merged.items()))


def _discover() -> dict[str, base.Dataset]:
  """The data sets of this package's modules, by name (TFDS builders live
  in subpackages: not data sets)."""
  found = registry.scan(
      __path__, __name__, _declared, 'data set', skip_packages=True
  )
  return dict(sorted(found.items()))


DATASETS: dict[str, base.Dataset] = _discover()
_ALL_CONFIG_KEYS = _merge_config_keys(DATASETS.values())


def get(name: str) -> base.Dataset:
  """The data set ``name``: registered, or the DATASET of the module ``name``."""
  return registry.lookup(
      name, DATASETS, _declared, key='dataset.name', attribute='DATASET'
  )


def config_keys(name: str) -> dict[str, Any]:
  """{key: default} of the ``config.dataset`` keys the data set reads.

  Only its own keys: ``base.COMMON_CONFIG_KEYS`` are read by all.
  """
  return dict(get(name).config_keys)


def all_config_keys() -> dict[str, Any]:
  """{key: default} of every registered data set's own keys, merged."""
  return dict(_ALL_CONFIG_KEYS)


def create_pipeline(
    config: Any, *, process_index: int = 0, process_count: int = 1
) -> pipeline.Pipeline:
  """The input pipeline named by ``config.dataset.name``."""
  return get(config.dataset.name).create_pipeline(
      config, process_index=process_index, process_count=process_count
  )


def device_preprocess(name: str) -> base.DevicePreprocess:
  """The on-device preprocessing of the data set ``name``."""
  return get(name).preprocess_on_device


def batch_shapes(
    dataset_config: Any, batch_size: int
) -> dict[str, jax.ShapeDtypeStruct]:
  """Shapes and dtypes of a pipeline's batch of ``batch_size`` examples."""
  spec = get(dataset_config.name).example_spec(dataset_config)
  shapes = {
      k: jax.ShapeDtypeStruct((batch_size,) + v.shape, v.dtype)
      for k, v in spec.items()
  }
  shapes['weights'] = jax.ShapeDtypeStruct((batch_size,), np.float32)
  return shapes


def is_in_memory(name: str) -> bool:
  """Whether the training split is held in memory (so can be on devices)."""
  return get(name).in_memory


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
