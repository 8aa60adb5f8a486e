"""Flax models, one file per family, in an explicit registry."""

import math
from typing import Any, Callable

import flax.linen as nn

from rigl_jax.models import gru_lm
from rigl_jax.models import lenet
from rigl_jax.models import mobilenet_v1
from rigl_jax.models import mobilenet_v2
from rigl_jax.models import resnet
from rigl_jax.models import wrn
from rigl_jax.sparse import checks

# Each entry builds a module from (num_classes, width, **options).
MODELS: dict[str, Callable[..., nn.Module]] = {
    'gru_lm': gru_lm.GRULanguageModel,
    'lenet300_100': lenet.LeNet300100,
    'mobilenet_v1': mobilenet_v1.MobileNetV1,
    'mobilenet_v2': mobilenet_v2.MobileNetV2,
    'resnet50': resnet.ResNet50,
    'wrn22_2': wrn.WRN22_2,
}


# The kernel each model's input meets first ('uniform' keeps it dense).
FIRST_LAYERS: dict[str, str] = {
    'gru_lm': 'embedding/embedding',
    'lenet300_100': 'Dense_0/kernel',
    'mobilenet_v1': 'stem/kernel',
    'mobilenet_v2': 'stem/kernel',
    'resnet50': 'stem/kernel',
    'wrn22_2': 'stem/kernel',
}


# What each model predicts: a class per example, or the next token of a
# sequence (a data set spec's ``task``).
TASKS: dict[str, str] = {
    'gru_lm': 'language_model',
    'lenet300_100': 'classification',
    'mobilenet_v1': 'classification',
    'mobilenet_v2': 'classification',
    'resnet50': 'classification',
    'wrn22_2': 'classification',
}


def create_model(
    name: str, *, num_classes: int, width: float, **options: Any
) -> nn.Module:
  """The model registered under ``name``."""
  checks.require(
      name in MODELS,
      'model.name',
      f'must be one of {sorted(MODELS)}, got {name!r}',
  )
  checks.require(
      isinstance(width, (int, float)) and math.isfinite(width) and width > 0,
      'model.width',
      f'must be a positive number, got {width!r}',
  )
  try:
    return MODELS[name](num_classes=num_classes, width=width, **options)
  except TypeError as e:  # An option the model does not have.
    raise checks.InvalidArgument('model.options', str(e)) from None
