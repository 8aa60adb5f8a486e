"""Sparse training methods, one module each, in an explicit registry."""

from typing import Any

from rigl_jax.sparse.methods import base
from rigl_jax.sparse.methods import dense
from rigl_jax.sparse.methods import pruning
from rigl_jax.sparse.methods import rigl
from rigl_jax.sparse.methods import set as set_lib
from rigl_jax.sparse.methods import small_dense
from rigl_jax.sparse.methods import snfs
from rigl_jax.sparse.methods import snip
from rigl_jax.sparse.methods import static

SparseMethod = base.SparseMethod

METHODS: dict[str, type[base.SparseMethod]] = {
    'dense': dense.Dense,
    'small_dense': small_dense.SmallDense,
    'static': static.Static,
    'snip': snip.Snip,
    'set': set_lib.Set,
    'snfs': snfs.Snfs,
    'rigl': rigl.RigL,
    'pruning': pruning.GradualPruning,
}

# How tables and plots name each method: the paper's spelling.
DISPLAY_NAMES: dict[str, str] = {
    'dense': 'Dense',
    'small_dense': 'Small-Dense',
    'static': 'Static',
    'snip': 'SNIP',
    'set': 'SET',
    'snfs': 'SNFS',
    'rigl': 'RigL',
    'pruning': 'Pruning',
}


def display_name(name: str) -> str:
  """The paper's name of the method ``name`` (the name itself if unknown)."""
  return DISPLAY_NAMES.get(name, name)


def get_method_class(name: str) -> type[base.SparseMethod]:
  """The class registered under ``name``."""
  if name not in METHODS:
    raise ValueError(f'method must be one of {sorted(METHODS)}, got {name!r}')
  return METHODS[name]


def from_config(config: Any) -> base.SparseMethod:
  """Builds ``config.method`` from a run config."""
  return get_method_class(config.method).from_config(config)
