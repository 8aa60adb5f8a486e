"""Width multipliers: how a layer's size scales with ``width``."""


def scale(size: int, width: float, divisor: int = 1) -> int:
  """``size * width`` rounded to a multiple of ``divisor``, at least one.

  With ``divisor`` > 1 this is MobileNet's rounding, which never goes below
  90% of the unrounded size.
  """
  if width <= 0:
    raise ValueError(f'width must be positive, got {width}')
  scaled = size * width
  if divisor == 1:
    return max(1, int(round(scaled)))
  rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
  if rounded < 0.9 * scaled:
    rounded += divisor
  return rounded
