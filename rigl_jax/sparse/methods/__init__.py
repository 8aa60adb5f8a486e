"""Sparse training methods, one module each, found by name.

Every module of this package that defines ``METHOD`` (a ``SparseMethod``
subclass) provides the method ``METHOD.name``: adding a method is adding
its module. ``METHODS`` lists them in the order of the RigL paper's tables,
then any others alphabetically.
"""

import importlib
import pkgutil
from typing import Any

from rigl_jax.sparse.methods import base

SparseMethod = base.SparseMethod

# Rows of the paper's Table 2, top to bottom.
_PAPER_ORDER = (
    'dense',
    'small_dense',
    'static',
    'snip',
    'set',
    'snfs',
    'rigl',
    'pruning',
)


def _discover() -> dict[str, type[base.SparseMethod]]:
  found = {}
  for module_info in pkgutil.iter_modules(__path__):
    module = importlib.import_module(f'{__name__}.{module_info.name}')
    method = getattr(module, 'METHOD', None)
    if method is None:
      continue
    if not (
        isinstance(method, type)
        and issubclass(method, base.SparseMethod)
        and method.name
        and method.display_name
    ):
      raise TypeError(
          f'{module.__name__}.METHOD must be a SparseMethod '
          'subclass with a name and a display_name'
      )
    if method.name in found:
      raise TypeError(f'two modules define the method {method.name!r}')
    found[method.name] = method
  rank = lambda name: (
      _PAPER_ORDER.index(name) if name in _PAPER_ORDER else len(_PAPER_ORDER),
      name,
  )
  return {name: found[name] for name in sorted(found, key=rank)}


METHODS: dict[str, type[base.SparseMethod]] = _discover()


def get_method_class(name: str) -> type[base.SparseMethod]:
  """The class registered under ``name``."""
  if name not in METHODS:
    raise ValueError(f'method must be one of {sorted(METHODS)}, got {name!r}')
  return METHODS[name]


def reads_sparsity(name: str) -> bool:
  """Whether the method ``name`` reads the sparsity keys (True if unknown)."""
  return METHODS[name].reads_sparsity if name in METHODS else True


def uses_masks(name: str) -> bool:
  """Whether the method ``name`` trains masks (True if unknown)."""
  return METHODS[name].uses_masks if name in METHODS else True


def display_name(name: str) -> str:
  """The paper's name of the method ``name`` (the name itself if unknown)."""
  return METHODS[name].display_name if name in METHODS else name


def from_config(config: Any) -> base.SparseMethod:
  """Builds ``config.method`` from a run config."""
  return get_method_class(config.method).from_config(config)
