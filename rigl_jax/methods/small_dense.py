"""Small-Dense: a dense model narrowed to the sparse model's parameter count."""

import dataclasses
from typing import Callable

from rigl_jax.methods import dense


@dataclasses.dataclass(frozen=True)
class SmallDense(dense.Dense):
  """Dense training of a narrower model; the width comes from ``find_width``."""

  name = 'small_dense'


def find_width(num_params: Callable[[float], int], target: int, *,
               max_width: float = 1.0, tolerance: float = 1e-4) -> float:
  """The width multiplier whose model has the closest count to ``target``.

  Args:
    num_params: parameter count of the model at a width multiplier; must be
      non-decreasing in the width.
    target: the parameter count to match (e.g. the sparse model's nonzeros).
    max_width: the largest width considered.
    tolerance: bisection stops when the bracket is this narrow.

  Returns:
    The width in (0, max_width] whose count is nearest to ``target``.
  """
  if target <= 0:
    raise ValueError(f'target parameter count must be positive, got {target}')
  low, high = 0.0, max_width
  if num_params(high) <= target:
    return high
  while high - low > tolerance:
    mid = (low + high) / 2
    if num_params(mid) <= target:
      low = mid
    else:
      high = mid
  # Channel counts are integers: pick the bracket end that lands closest.
  candidates = [w for w in (low, high) if w > 0]
  return min(candidates, key=lambda w: abs(num_params(w) - target))
