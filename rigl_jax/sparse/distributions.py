"""Per-layer sparsities from parameter shapes: uniform, Erdős-Rényi and ERK.

A leaf is a *kernel* when ndim >= 2 (conv, dense, recurrent and embedding
kernels); biases and normalization parameters always stay dense. Kernels
follow an ordered list of rules, ``(regex, value)``, the first rule whose
regex matches the '/'-joined path deciding:

- ``'dense'``: the kernel stays dense;
- a float in [0, 1]: the kernel gets exactly that sparsity and is left out
  of the distribution's budget;
- ``'distributed'``: the kernel takes part in the distribution, overriding
  the distribution's own default (below).

Kernels no rule matches take part in the distribution, with one default:
under 'uniform' the first layer (the kernel the input meets first, given by
the caller) stays dense, as in the paper; ER and ERK sparsify it.

ER and ERK give layer l a density proportional to ``raw_l``:
ERK ``(sum(shape) / prod(shape)) ** erk_power_scale``, ER the same over the
last two dimensions only, ``(n_in + n_out) / (n_in * n_out)``. A single
``eps`` scales them so that the distributed layers together keep
``(1 - sparsity)`` of their weights; a layer whose density would exceed 1 is
made dense and the rest is solved again (Evci et al. 2020, appendix).
"""

from collections.abc import Sequence
import math
import re
from typing import Any, Optional, Union

import jax

from rigl_jax.sparse import checks
from rigl_jax.sparse import tree_paths

DISTRIBUTIONS = ('uniform', 'erdos_renyi', 'erk')


def _shape(leaf: Any) -> tuple[int, ...]:
  return tuple(int(d) for d in getattr(leaf, 'shape', ()))


DENSE = 'dense'
DISTRIBUTED = 'distributed'
# (regex, 'dense' | 'distributed' | sparsity)
Rule = tuple[str, Union[str, float]]


def check_rules(rules: Sequence[Rule]) -> list[tuple[re.Pattern, Any]]:
  """Compiles the rules; raises ``InvalidArgument('layer_sparsity', ...)``."""
  checks.require(
      not isinstance(rules, (str, bytes)),
      'layer_sparsity',
      f'must be a sequence of (regex, value) pairs, got {rules!r}',
  )
  compiled = []
  for rule in rules:
    checks.require(
        isinstance(rule, (tuple, list))
        and len(rule) == 2
        and isinstance(rule[0], str),
        'layer_sparsity',
        f'each rule is a (regex, value) pair, got {rule!r}',
    )
    pattern, value = rule
    try:
      regex = re.compile(pattern)
    except re.error as e:
      raise checks.InvalidArgument(
          'layer_sparsity', f'invalid regex {pattern!r}: {e}'
      ) from None
    if value not in (DENSE, DISTRIBUTED):
      checks.require(
          isinstance(value, (int, float))
          and not isinstance(value, bool)
          and 0.0 <= value <= 1.0,
          'layer_sparsity',
          f'the value of {pattern!r} must be {DENSE!r}, {DISTRIBUTED!r} or a '
          f'sparsity in [0, 1], got {value!r}',
      )
      value = float(value)
    compiled.append((regex, value))
  return compiled


def _raw_density(
    shape: tuple[int, ...], distribution: str, erk_power_scale: float
) -> float:
  if distribution == 'erk':
    try:
      return (sum(shape) / math.prod(shape)) ** erk_power_scale
    except OverflowError:
      return math.inf
  n_in, n_out = shape[-2], shape[-1]
  return (n_in + n_out) / (n_in * n_out)


def _solve_densities(
    sizes: Sequence[int], raw: Sequence[float], sparsity: float
) -> list[float]:
  """Finds densities ``min(1, eps * raw_l)`` that keep the nonzero budget."""
  target_nonzeros = (1.0 - sparsity) * sum(sizes)
  dense = [False] * len(sizes)
  while True:
    free = [i for i in range(len(sizes)) if not dense[i]]
    if not free:
      break
    budget = target_nonzeros - sum(
        sizes[i] for i in range(len(sizes)) if dense[i]
    )
    eps = budget / sum(raw[i] * sizes[i] for i in free)
    largest = max(raw[i] for i in free)
    if eps * largest <= 1.0:
      break
    # The layers with the largest raw density would exceed density 1: make
    # them dense and spread the remaining budget over the others. Each pass
    # makes at least one layer dense (raw densities are finite and > 0, so
    # ``largest`` is one of them): the loop ends.
    for i in free:
      if raw[i] == largest:
        dense[i] = True
  return [1.0 if dense[i] else eps * raw[i] for i in range(len(sizes))]


def get_sparsities(
    params: Any,
    sparsity: float,
    distribution: str,
    *,
    rules: Sequence[Rule] = (),
    first_layer: Optional[str] = None,
    erk_power_scale: float = 1.0,
) -> Any:
  """Returns the sparsity of every sparsified leaf of ``params``.

  Args:
    params: a pytree of arrays or ``jax.ShapeDtypeStruct``.
    sparsity: the overall target sparsity in [0, 1) of the distributed
      kernels.
    distribution: 'uniform', 'erdos_renyi' or 'erk'.
    rules: ``(regex, value)`` pairs, see the module docstring. Each regex
      must match at least one kernel.
    first_layer: the path of the kernel the input meets first (dense by
      default under 'uniform').
    erk_power_scale: exponent applied to ERK's raw densities (1.0 is ERK).

  Returns:
    A pytree with ``params``' structure holding a Python float sparsity for
    each sparsified leaf and ``None`` for each dense leaf.

  Raises:
    checks.InvalidArgument: naming 'sparsity', 'distribution',
      'layer_sparsity' or 'erk_power_scale'.
  """
  checks.require_in_range('sparsity', sparsity, 0.0, 1.0, high_open=True)
  checks.require(
      distribution in DISTRIBUTIONS,
      'distribution',
      f'must be one of {DISTRIBUTIONS}, got {distribution!r}',
  )
  checks.require(
      isinstance(erk_power_scale, (int, float))
      and math.isfinite(erk_power_scale)
      and erk_power_scale >= 0,
      'erk_power_scale',
      f'must be a number >= 0, got {erk_power_scale!r}',
  )
  compiled = check_rules(rules)

  leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
  paths = [tree_paths.key_path_to_str(path) for path, _ in leaves]
  shapes = [_shape(leaf) for _, leaf in leaves]
  kernels = [i for i, shape in enumerate(shapes) if len(shape) >= 2]
  for regex, _ in compiled:
    checks.require(
        any(regex.search(paths[i]) for i in kernels),
        'layer_sparsity',
        f'regex {regex.pattern!r} matches no kernel. Kernel paths are: '
        f'{", ".join(paths[i] for i in kernels)}',
    )

  result: list[Optional[float]] = [None] * len(leaves)
  distributed = []
  for i in kernels:
    value = next((v for regex, v in compiled if regex.search(paths[i])), None)
    if value is None and distribution == 'uniform' and paths[i] == first_layer:
      value = DENSE  # The paper keeps the first layer dense under uniform.
    if value == DENSE:
      continue
    if value is None or value == DISTRIBUTED:
      distributed.append(i)
    else:
      result[i] = value

  if distribution == 'uniform':
    for i in distributed:
      result[i] = float(sparsity)
  elif distributed:
    sizes = [math.prod(shapes[i]) for i in distributed]
    raw = [
        _raw_density(shapes[i], distribution, erk_power_scale)
        for i in distributed
    ]
    # A large power underflows the raw densities of big layers to 0 (or
    # overflows small ones): no eps could then keep the budget.
    checks.require(
        all(math.isfinite(r) and r > 0 for r in raw),
        'erk_power_scale',
        f'{erk_power_scale!r} is too large for these layer shapes: '
        '(sum(shape) / prod(shape)) ** erk_power_scale under- or overflows',
    )
    densities = _solve_densities(sizes, raw, sparsity)
    for i, density in zip(distributed, densities):
      result[i] = max(0.0, 1.0 - density)
  return jax.tree_util.tree_unflatten(treedef, result)
