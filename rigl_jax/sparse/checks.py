"""Argument checks that name what they check.

Constructors of the core raise ``InvalidArgument`` naming their own
argument; code that builds them from a config renames it to the config key
(``renamed``), so the runner can report ``config.<key>: <message>``.
"""

import contextlib
from collections.abc import Iterator
import math
from typing import Any


class InvalidArgument(ValueError):
  """An argument is invalid; ``name`` says which."""

  def __init__(self, name: str, message: str):
    super().__init__(f'{name}: {message}')
    self.name = name
    self.message = message


def require(condition: Any, name: str, message: str) -> None:
  """Raises ``InvalidArgument(name, message)`` unless ``condition``."""
  if not condition:
    raise InvalidArgument(name, message)


def require_positive_int(name: str, value: Any) -> None:
  require(
      isinstance(value, (int, float))
      and not isinstance(value, bool)
      and math.isfinite(value)
      and int(value) == value
      and value > 0,
      name,
      f'must be a positive integer, got {value!r}',
  )


def require_in_range(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
  """low <= value <= high, with either end open; NaN always fails."""
  ok = (
      isinstance(value, (int, float))
      and not isinstance(value, bool)
      and (
          (low < value if low_open else low <= value)
          and (value < high if high_open else value <= high)
      )
  )
  interval = (
      f'{"(" if low_open else "["}{low:g}, '
      f'{high:g}{")" if high_open else "]"}'
  )
  require(ok, name, f'must be in {interval}, got {value!r}')


@contextlib.contextmanager
def renamed(**names: str) -> Iterator[None]:
  """Renames the argument of an ``InvalidArgument`` raised inside.

  ``with renamed(interval='mask_update.interval'): UpdateSchedule(...)``
  reports an invalid interval as ``mask_update.interval``.
  """
  try:
    yield
  except InvalidArgument as e:
    raise InvalidArgument(names.get(e.name, e.name), e.message) from None
