"""Small-Dense: a dense model narrowed to the size of the sparse model.

The RigL paper's Small-Dense rows match model *size*: a sparse model stores
32 bits per nonzero weight plus a mask bit per entry of each sparse layer
(the reference's counting notebooks give ResNet-50 widths 0.465 / 0.34 at
80 / 90% ERK). ``small_dense.match='params'`` matches the nonzero count
instead (a narrower model). ``small_dense.layer_sparsity`` sizes it against
a sparse model with other per-layer rules than the run's (the reference
sized MobileNet v1's against ERK with sparse depthwise kernels).
"""

import dataclasses
import math
from typing import Any, Callable, Optional

from rigl_jax.sparse import checks
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse.methods import base
from rigl_jax.sparse.methods import dense

MATCHES = ('size', 'params')


@dataclasses.dataclass(frozen=True)
class SmallDense(dense.Dense):
  """Dense training of a narrower model; the width comes from ``find_width``.

  Attributes:
    match: 'size' (the paper's: storage in bits, mask included) or 'params'
      (the nonzero parameter count).
    layer_sparsity: rules of the sparse model to match, as
      ``config.layer_sparsity``; None: the run's own.
  """

  match: str = 'size'
  layer_sparsity: Optional[tuple[Any, ...]] = None

  name = 'small_dense'
  display_name = 'Small-Dense'
  reads_sparsity = True  # Its width matches the sparse model's size.

  def __post_init__(self):
    checks.require(
        self.match in MATCHES,
        'match',
        f'must be one of {MATCHES}, got {self.match!r}',
    )

  @classmethod
  def config_defaults(cls):
    return {
        'small_dense': {'match': 'size', 'layer_sparsity': base.Unset(tuple)}
    }

  @classmethod
  def from_config(cls, config):
    rules = config.small_dense.layer_sparsity
    with checks.renamed(match='small_dense.match'):
      return cls(
          match=config.small_dense.match,
          layer_sparsity=None if rules is None else tuple(map(tuple, rules)),
      )

  def model_width(self, width, num_params_at, sparse_model):
    """The width at which the dense model is as big as the sparse one."""
    with checks.renamed(layer_sparsity='small_dense.layer_sparsity'):
      model = sparse_model(self.layer_sparsity)
    if self.match == 'size':
      target = math.ceil(model.bits / masks_lib.BITS_PER_WEIGHT)
    else:
      target = model.nonzeros
    try:
      return width * find_width(lambda w: num_params_at(width * w), target)
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
