"""Flax models, one file per family, each declaring itself.

Every module of this package that defines ``MODEL`` (a ``base.Model``), or
``MODELS`` (a tuple of them), provides those models: adding a model is
adding its module. A ``config.model.name`` that is not registered but holds
a dot names a module outside the package (``my_project.toy_model``) whose
``MODEL`` is used, so models can live in their own package.
"""

import importlib
import math
import pkgutil
from types import ModuleType
from typing import Any

import flax.linen as nn

from rigl_jax.models import base
from rigl_jax.sparse import checks

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
  found = {}
  where = {}
  for module_info in pkgutil.iter_modules(__path__):
    module = importlib.import_module(f'{__name__}.{module_info.name}')
    for model in _declared(module):
      if model.name in found:
        raise TypeError(
            f'{module.__name__}: declares the model {model.name!r}, '
            f'already declared by {where[model.name]}'
        )
      found[model.name] = model
      where[model.name] = module.__name__
  return {name: found[name] for name in sorted(found)}


MODELS: dict[str, base.Model] = _discover()


def _from_module(path: str) -> base.Model:
  """The ``MODEL`` of the importable module ``path``."""
  try:
    module = importlib.import_module(path)
  except ImportError as e:
    raise checks.InvalidArgument(
        'model.name',
        f'must be one of {sorted(MODELS)} or a module declaring MODEL; '
        f'cannot import {path!r}: {e}',
    ) from None
  checks.require(
      getattr(module, 'MODEL', None) is not None,
      'model.name',
      f'module {path!r} declares no MODEL',
  )
  return _declared(module)[0]


def get(name: str) -> base.Model:
  """The model ``name``: registered, or the MODEL of the module ``name``."""
  if name in MODELS:
    return MODELS[name]
  if isinstance(name, str) and '.' in name:
    return _from_module(name)
  raise checks.InvalidArgument(
      'model.name', f'must be one of {sorted(MODELS)}, got {name!r}'
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
