"""Per-layer sparsities from parameter shapes: uniform, Erdős-Rényi and ERK.

A leaf is *sparsified* when it is a kernel (ndim >= 2: conv, dense, recurrent
and embedding kernels) whose '/'-joined path matches none of the
``dense_layers`` regexes. Biases and normalization parameters stay dense.

ER and ERK give layer l a density proportional to ``raw_l``:
ERK ``(sum(shape) / prod(shape)) ** erk_power_scale``, ER the same over the
last two dimensions only, ``(n_in + n_out) / (n_in * n_out)``. A single
``eps`` scales them so that the non-custom sparsified layers together keep
``(1 - sparsity)`` of their weights; a layer whose density would exceed 1 is
made dense and the rest is solved again (Evci et al. 2020, appendix).
"""

from collections.abc import Mapping, Sequence
import math
import re
from typing import Any, Optional

import jax

from rigl_jax.sparse import tree_paths

DISTRIBUTIONS = ('uniform', 'erdos_renyi', 'erk')


def _shape(leaf: Any) -> tuple[int, ...]:
  return tuple(int(d) for d in getattr(leaf, 'shape', ()))


def _compile_patterns(patterns: Sequence[str], what: str) -> list[re.Pattern]:
  if isinstance(patterns, str):
    raise TypeError(f'{what} must be a sequence of regexes, got the string '
                    f'{patterns!r}; write ({patterns!r},)')
  compiled = []
  for pattern in patterns:
    try:
      compiled.append(re.compile(pattern))
    except re.error as e:
      raise ValueError(f'{what}: invalid regex {pattern!r}: {e}') from None
  return compiled


def _check_every_pattern_matches(patterns: Sequence[re.Pattern],
                                 paths: Sequence[str], what: str) -> None:
  for pattern in patterns:
    if not any(pattern.search(path) for path in paths):
      raise ValueError(
          f'{what}: regex {pattern.pattern!r} matches no parameter. '
          f'Parameter paths are: {", ".join(paths)}')


def _raw_density(shape: tuple[int, ...], distribution: str,
                 erk_power_scale: float) -> float:
  if distribution == 'erk':
    return (sum(shape) / math.prod(shape))**erk_power_scale
  n_in, n_out = shape[-2], shape[-1]
  return (n_in + n_out) / (n_in * n_out)


def _solve_densities(sizes: Sequence[int], raw: Sequence[float],
                     sparsity: float) -> list[float]:
  """Finds densities ``min(1, eps * raw_l)`` that keep the nonzero budget."""
  target_nonzeros = (1.0 - sparsity) * sum(sizes)
  dense = [False] * len(sizes)
  while True:
    free = [i for i in range(len(sizes)) if not dense[i]]
    if not free:
      break
    budget = target_nonzeros - sum(sizes[i] for i in range(len(sizes))
                                   if dense[i])
    eps = budget / sum(raw[i] * sizes[i] for i in free)
    largest = max(raw[i] for i in free)
    if eps * largest <= 1.0:
      break
    # The layers with the largest raw density would exceed density 1: make
    # them dense and spread the remaining budget over the others.
    for i in free:
      if raw[i] == largest:
        dense[i] = True
  return [1.0 if dense[i] else eps * raw[i] for i in range(len(sizes))]


def get_sparsities(params: Any,
                   sparsity: float,
                   distribution: str,
                   *,
                   dense_layers: Sequence[str] = (),
                   custom_sparsities: Optional[Mapping[str, float]] = None,
                   erk_power_scale: float = 1.0) -> Any:
  """Returns the sparsity of every sparsified leaf of ``params``.

  Args:
    params: a pytree of arrays or ``jax.ShapeDtypeStruct``.
    sparsity: the overall target sparsity in [0, 1) of the non-custom
      sparsified layers.
    distribution: 'uniform', 'erdos_renyi' or 'erk'.
    dense_layers: regexes (``re.search``) of leaf paths to keep dense. Each
      must match at least one parameter.
    custom_sparsities: maps path regexes to fixed sparsities for the matching
      sparsified leaves; those leaves are left out of the budget. Each regex
      must match at least one sparsified parameter.
    erk_power_scale: exponent applied to ERK's raw densities (1.0 is ERK).

  Returns:
    A pytree with ``params``' structure holding a Python float sparsity for
    each sparsified leaf and ``None`` for each dense leaf.

  Raises:
    ValueError: for a sparsity outside [0, 1), an unknown distribution, an
      invalid regex or one that matches nothing.
  """
  if not 0.0 <= sparsity < 1.0:
    raise ValueError(f'sparsity must be in [0, 1), got {sparsity}')
  if distribution not in DISTRIBUTIONS:
    raise ValueError(f'distribution must be one of {DISTRIBUTIONS}, '
                     f'got {distribution!r}')
  custom_sparsities = dict(custom_sparsities or {})
  for pattern, value in custom_sparsities.items():
    if not 0.0 <= value <= 1.0:
      raise ValueError(f'custom_sparsities[{pattern!r}] must be in [0, 1], '
                       f'got {value}')
  dense_patterns = _compile_patterns(dense_layers, 'dense_layers')
  custom_patterns = _compile_patterns(list(custom_sparsities),
                                      'custom_sparsities')

  leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
  paths = [tree_paths.key_path_to_str(path) for path, _ in leaves]
  shapes = [_shape(leaf) for _, leaf in leaves]
  _check_every_pattern_matches(dense_patterns, paths, 'dense_layers')

  sparsified = [
      i for i, (path, shape) in enumerate(zip(paths, shapes))
      if len(shape) >= 2 and not any(p.search(path) for p in dense_patterns)
  ]
  _check_every_pattern_matches(custom_patterns, [paths[i] for i in sparsified],
                               'custom_sparsities (among sparsified layers)')

  result: list[Optional[float]] = [None] * len(leaves)
  budgeted = []
  for i in sparsified:
    matches = [p for p in custom_patterns if p.search(paths[i])]
    if matches:
      result[i] = float(custom_sparsities[matches[0].pattern])
    else:
      budgeted.append(i)

  if distribution == 'uniform':
    for i in budgeted:
      result[i] = float(sparsity)
  elif budgeted:
    sizes = [math.prod(shapes[i]) for i in budgeted]
    raw = [_raw_density(shapes[i], distribution, erk_power_scale)
           for i in budgeted]
    densities = _solve_densities(sizes, raw, sparsity)
    for i, density in zip(budgeted, densities):
      result[i] = max(0.0, 1.0 - density)
  return jax.tree_util.tree_unflatten(treedef, result)
