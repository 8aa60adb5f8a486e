"""Checks a per-leaf sparsity tree against the params it describes.

``get_sparsities`` makes trees that pass; a tree written by hand (or by a
user's own rule) is checked here before any mask is drawn, with the rules
the command line applies to ``config.sparsity`` and
``config.layer_sparsity``: ``None`` for a dense leaf, else a number in
[0, 1) that keeps at least one active weight.
"""

import math
from typing import Any

import jax

from rigl_jax.sparse import checks
from rigl_jax.sparse import structure as structure_lib
from rigl_jax.sparse import tree_paths
from rigl_jax.sparse.tree_paths import PyTree


def _paths(tree: PyTree) -> list[str]:
  leaves, _ = jax.tree_util.tree_flatten_with_path(
      tree, is_leaf=tree_paths.is_none
  )
  return [tree_paths.key_path_to_str(path) for path, _ in leaves]


def _first_mismatch(params: PyTree, sparsities: PyTree) -> str:
  """The first path that one tree has and the other lacks, in order."""
  want, got = _paths(params), _paths(sparsities)
  for i in range(max(len(want), len(got))):
    if i >= len(want) or i >= len(got) or want[i] != got[i]:
      if i < len(want) and want[i] not in got:
        return f'{want[i]!r} of params has no sparsity'
      extra = got[i] if i < len(got) else want[i]
      return f'{extra!r} is not a leaf of params'
  return 'the container types differ'


def _is_number(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def check(params: PyTree, sparsities: PyTree, name: str = 'sparsities') -> None:
  """Raises ``checks.InvalidArgument(name, ...)`` naming the first bad leaf.

  Args:
    params: the weights (arrays or ``jax.ShapeDtypeStruct``).
    sparsities: ``params``' structure with ``None`` for dense leaves and a
      Python or NumPy number for sparse ones.
    name: the argument's name in the message.
  """
  param_leaves, param_def = jax.tree_util.tree_flatten_with_path(params)
  try:
    values = param_def.flatten_up_to(sparsities)
  except (ValueError, TypeError):
    checks.require(
        False,
        name,
        'must have the structure of params, with None for dense leaves '
        f'(as get_sparsities returns): {_first_mismatch(params, sparsities)}',
    )
  for (key_path, leaf), value in zip(param_leaves, values):
    if value is None:
      continue
    path = tree_paths.key_path_to_str(key_path)
    if hasattr(value, 'ndim') and value.ndim == 0:
      value = value.item()  # A NumPy or JAX scalar.
    checks.require(
        _is_number(value) and math.isfinite(value) and 0 <= value < 1,
        name,
        f'{path!r}: a sparsity must be a number in [0, 1) or None (dense), '
        f'got {value!r}',
    )
    size = math.prod(leaf.shape)
    checks.require(
        structure_lib.num_active_for(value, size) > 0,
        name,
        f'{path!r}: sparsity {value!r} keeps no active weight of its '
        f'{size}; lower it',
    )
