"""What each data set feeds the model, known without loading it.

Models are built (and FLOPs counted) from these specs alone; the input
pipelines in ``rigl_jax/data`` produce batches that match them.
"""

import dataclasses
from typing import Any, Callable

import numpy as np


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
    'mnist': lambda _: DatasetSpec((28, 28, 1), np.float32, 10,
                                   'classification'),
}


def get_spec(dataset_config: Any) -> DatasetSpec:
  """The spec of ``config.dataset``."""
  name = dataset_config.name
  if name not in _SPECS:
    raise ValueError(f'config.dataset.name must be one of {sorted(_SPECS)}, '
                     f'got {name!r}')
  return _SPECS[name](dataset_config)
