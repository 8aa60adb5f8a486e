"""Flax models, one file per family, in an explicit registry."""

from typing import Any, Callable

import flax.linen as nn

from rigl_jax.models import gru_lm
from rigl_jax.models import lenet
from rigl_jax.models import mobilenet_v1
from rigl_jax.models import mobilenet_v2
from rigl_jax.models import resnet
from rigl_jax.models import wrn

# Each entry builds a module from (num_classes, width, **options).
MODELS: dict[str, Callable[..., nn.Module]] = {
    'gru_lm': gru_lm.GRULanguageModel,
    'lenet300_100': lenet.LeNet300100,
    'mobilenet_v1': mobilenet_v1.MobileNetV1,
    'mobilenet_v2': mobilenet_v2.MobileNetV2,
    'resnet50': resnet.ResNet50,
    'wrn22_2': wrn.WRN22_2,
}


def create_model(name: str, *, num_classes: int, width: float,
                 **options: Any) -> nn.Module:
  """The model registered under ``name``."""
  if name not in MODELS:
    raise ValueError(f'model.name must be one of {sorted(MODELS)}, '
                     f'got {name!r}')
  if width <= 0:
    raise ValueError(f'model.width must be positive, got {width}')
  return MODELS[name](num_classes=num_classes, width=width, **options)
