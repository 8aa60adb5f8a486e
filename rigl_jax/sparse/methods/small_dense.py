"""Small-Dense: a dense model narrowed to the sparse model's parameter count."""

import dataclasses
from typing import Callable

from rigl_jax.sparse import checks
from rigl_jax.sparse.methods import dense


@dataclasses.dataclass(frozen=True)
class SmallDense(dense.Dense):
  """Dense training of a narrower model; the width comes from ``find_width``."""

  name = 'small_dense'
  display_name = 'Small-Dense'

  def model_width(self, width, num_params_at, sparse_nonzeros):
    """The width at which the dense model has the sparse model's nonzeros."""
    try:
      return width * find_width(
          lambda w: num_params_at(width * w), sparse_nonzeros
      )
    except ValueError as e:
      raise checks.InvalidArgument('method', str(e)) from None


def find_width(
    num_params: Callable[[float], int],
    target: int,
    *,
    max_width: float = 1.0,
    min_width: float = 1e-3,
    tolerance: float = 1e-4,
) -> float:
  """The width multiplier whose model has the closest count to ``target``.

  Args:
    num_params: parameter count of the model at a width multiplier; must be
      non-decreasing in the width.
    target: the parameter count to match (e.g. the sparse model's nonzeros).
    max_width: the largest width considered.
    min_width: the smallest width considered.
    tolerance: bisection stops when the bracket is this narrow.

  Returns:
    The width in [min_width, max_width] whose count is nearest to ``target``.

  Raises:
    ValueError: no width in range comes near ``target`` (a part of the model
      that does not shrink with the width holds more parameters).
  """
  if target <= 0:
    raise ValueError(f'target parameter count must be positive, got {target}')
  smallest = num_params(min_width)
  if smallest > target:
    raise ValueError(
        f'small_dense: the model has {smallest} parameters even at width '
        f'{min_width}, more than the {target} to match; some layers do not '
        'scale with the width'
    )
  low, high = min_width, max_width
  if num_params(high) <= target:
    return high
  while high - low > tolerance:
    mid = (low + high) / 2
    if num_params(mid) <= target:
      low = mid
    else:
      high = mid
  # Channel counts are integers: pick the bracket end that lands closest.
  return min((low, high), key=lambda w: abs(num_params(w) - target))


METHOD = SmallDense
