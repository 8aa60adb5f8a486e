"""The BatchNorm every convolutional model in the registry uses."""

from typing import Any

import flax.linen as nn


def batch_norm(train: bool, **kwargs: Any) -> nn.BatchNorm:
  """BatchNorm with batch statistics when training, running ones otherwise.

  Momentum 0.9 and epsilon 1e-5 follow the ResNet setup the RigL paper
  trains with. Scale and bias are 'params'; the running mean and variance
  go to the 'batch_stats' collection.

  Args:
    train: whether to normalize with (and update) batch statistics.
    **kwargs: other ``nn.BatchNorm`` attributes, e.g. ``name``, ``scale_init``.
  """
  return nn.BatchNorm(
      use_running_average=not train, momentum=0.9, epsilon=1e-5, **kwargs
  )
