"""What each data set feeds the model, known without loading it.

Models are built (and FLOPs counted) from these specs alone; each data
set's module declares its own (``rigl_jax.data.base.Dataset``).
"""

from typing import Any

from rigl_jax import data
from rigl_jax.data import base

DatasetSpec = base.DatasetSpec


def get_spec(dataset_config: Any) -> DatasetSpec:
  """The spec of ``config.dataset``."""
  return data.get(dataset_config.name).spec(dataset_config)


def names() -> tuple[str, ...]:
  """The registered data sets."""
  return tuple(data.DATASETS)
