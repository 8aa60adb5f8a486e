"""Flax models, one file per family, each declaring itself.

Every module of this package that defines ``MODEL`` (a ``base.Model``), or
``MODELS`` (a tuple of them), provides those models: adding a model is
adding its module. A ``config.model.name`` that is not registered but holds
a dot names a module outside the package (``my_project.toy_model``) whose
``MODEL`` is used, so models can live in their own package.
"""

import math
from types import ModuleType
from typing import Any

import flax.linen as nn

from rigl_jax.models import base
from rigl_jax.sparse import checks
from rigl_jax.sparse import registry

Model = base.Model


def _declared(module: ModuleType) -> tuple[base.Model, ...]:
  """The models ``module`` declares; TypeError naming it if malformed."""
  single = getattr(module, 'MODEL', None)
  several = getattr(module, 'MODELS', None)
  if single is not None and several is not None:
    raise TypeError(f'{module.__name__}: declares both MODEL and MODELS')
  if several is not None and not isinstance(several, (tuple, list)):
    raise TypeError(
        f'{module.__name__}.MODELS: must be a tuple of Model, got {several!r}'
    )
  declared = (single,) if single is not None else tuple(several or ())
  for model in declared:
    problem = base.problem(model)
    if problem:
      raise TypeError(f'{module.__name__}: {problem}')
  return declared


def _discover() -> dict[str, base.Model]:
  """The models of this package's modules, by name."""
  found = registry.scan(__path__, __name__, _declared, 'model')
  return dict(sorted(found.items()))


MODELS: dict[str, base.Model] = _discover()


def get(name: str) -> base.Model:
  """The model ``name``: registered, or the MODEL of the module ``name``."""
  return registry.lookup(
      name, MODELS, _declared, key='model.name', attribute='MODEL'
  )


def create_model(
    name: str, *, num_classes: int, width: float, **options: Any
) -> nn.Module:
  """The Flax module of the model ``name``; ``options`` override its defaults."""
  model = get(name)
  checks.require(
      isinstance(width, (int, float)) and math.isfinite(width) and width > 0,
      'model.width',
      f'must be a positive number, got {width!r}',
  )
  try:
    return model.create(
        num_classes=num_classes,
        width=width,
        **{**model.default_options, **options},
    )
  except TypeError as e:  # An option the model does not have.
    raise checks.InvalidArgument('model.options', str(e)) from None
