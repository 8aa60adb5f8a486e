"""What each data set feeds the model, known without loading it.

Models are built (and FLOPs counted) from these specs alone; the input
pipelines in ``rigl_jax/data`` produce batches that match them.
"""

import dataclasses
from typing import Any, Callable

import numpy as np

from rigl_jax.sparse import checks


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """Shape (without batch) and dtype of 'inputs', and the number of classes.

  For language models ``num_classes`` is the vocabulary size and labels have
  the shape of the inputs.
  """

  input_shape: tuple[int, ...]
  input_dtype: Any
  num_classes: int
  task: str  # 'classification' or 'language_model'


# Each entry maps the run config's ``dataset`` block to the spec.
_SPECS: dict[str, Callable[[Any], DatasetSpec]] = {
    'mnist': lambda _: DatasetSpec(
        (28, 28, 1), np.float32, 10, 'classification'
    ),
    'cifar10': lambda _: DatasetSpec(
        (32, 32, 3), np.float32, 10, 'classification'
    ),
    'imagenet2012': lambda cfg: DatasetSpec(
        (cfg.image_size, cfg.image_size, 3), np.float32, 1000, 'classification'
    ),
    'tiny_shakespeare': lambda cfg: DatasetSpec(
        (cfg.sequence_length,), np.int32, 256, 'language_model'
    ),
    'wikitext103': lambda cfg: DatasetSpec(
        (cfg.sequence_length,), np.int32, 256, 'language_model'
    ),
}


def get_spec(dataset_config: Any) -> DatasetSpec:
  """The spec of ``config.dataset``."""
  name = dataset_config.name
  checks.require(
      name in _SPECS,
      'dataset.name',
      f'must be one of {sorted(_SPECS)}, got {name!r}',
  )
  return _SPECS[name](dataset_config)


def names() -> tuple[str, ...]:
  """The data sets with a spec."""
  return tuple(sorted(_SPECS))
