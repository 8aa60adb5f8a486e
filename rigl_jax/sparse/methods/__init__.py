"""Sparse training methods, one module each, found by name.

Every module of this package that defines ``METHOD`` (a ``SparseMethod``
subclass) provides the method ``METHOD.name``: adding a method is adding
its module. ``METHODS`` lists them in the order of the RigL paper's tables,
then any others alphabetically.
"""

from types import ModuleType
from typing import Any

from rigl_jax.sparse import checks
from rigl_jax.sparse import registry
from rigl_jax.sparse import structure as structure_lib
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


def _declared(module: ModuleType) -> tuple[type[base.SparseMethod], ...]:
  """The method ``module`` declares, if any; TypeError naming it if bad."""
  method = getattr(module, 'METHOD', None)
  if method is None:
    return ()
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
  return (method,)


def _rank(name: str) -> tuple[int, str]:
  if name in _PAPER_ORDER:
    return _PAPER_ORDER.index(name), name
  return len(_PAPER_ORDER), name


def _discover() -> dict[str, type[base.SparseMethod]]:
  found = registry.scan(__path__, __name__, _declared, 'method')
  return {name: found[name] for name in sorted(found, key=_rank)}


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


def structure_from_config(config: Any) -> structure_lib.MaskStructure:
  """``config.mask_structure``; unstructured where the config has none."""
  block = config.get('mask_structure') if hasattr(config, 'get') else None
  if block is None:
    return structure_lib.UNSTRUCTURED
  checks.require(
      block.kind in structure_lib.KINDS,
      'mask_structure.kind',
      f'must be one of {list(structure_lib.KINDS)}, got {block.kind!r}',
  )
  if block.kind != 'n_m':
    return structure_lib.MaskStructure(block.kind)
  for key in ('n', 'm'):
    checks.require(
        isinstance(block[key], int)
        and not isinstance(block[key], bool)
        and block[key] > 0,
        f'mask_structure.{key}',
        f'must be a positive integer, got {block[key]!r}',
    )
  checks.require(
      block.n <= block.m,
      'mask_structure.n',
      f'must be at most mask_structure.m ({block.m}), got {block.n}',
  )
  return structure_lib.MaskStructure('n_m', block.n, block.m)


def from_config(config: Any) -> base.SparseMethod:
  """Builds ``config.method``, with its mask structure, from a run config."""
  method = get_method_class(config.method).from_config(config)
  if not method.uses_masks:
    return method
  method = method.with_structure(structure_from_config(config))
  problem = method.structure_problem()
  checks.require(problem is None, 'mask_structure.kind', problem or '')
  return method
