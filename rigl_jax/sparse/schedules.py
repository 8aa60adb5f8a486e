"""When topologies change and by how much: update steps, drop fraction, pruning.

Every function accepts a Python int or a traced integer step, so the same
schedule decides inside the jitted step and on the host (for logging).
"""

import dataclasses
import functools
import math
from typing import Any

import optax

from rigl_jax.sparse import checks

DROP_FRACTION_SCHEDULES = ('cosine', 'constant', 'inverse_power')


@dataclasses.dataclass(frozen=True)
class UpdateSchedule:
  """Mask updates at steps t with begin <= t < end, every ``interval``."""

  begin_step: int
  end_step: int
  interval: int

  def __post_init__(self):
    checks.require_positive_int('interval', self.interval)
    checks.require(
        int(self.begin_step) == self.begin_step and self.begin_step >= 0,
        'begin_step',
        f'must be an integer >= 0, got {self.begin_step!r}',
    )
    checks.require(
        self.end_step > self.begin_step,
        'end_step',
        f'must be greater than begin_step ({self.begin_step}), '
        f'got {self.end_step!r}',
    )

  def is_update_step(self, step: Any) -> Any:
    return (
        (step >= self.begin_step)
        & (step < self.end_step)
        & ((step - self.begin_step) % self.interval == 0)
    )


@dataclasses.dataclass(frozen=True)
class DropFraction:
  """Fraction of active connections replaced at step t (f_decay in the paper).

  ``cosine``: α/2 (1 + cos(π t / T_end)); ``constant``: α;
  ``inverse_power``: α (1 - t / T_end) ** power.
  """

  schedule: str
  initial_fraction: float
  end_step: int
  power: float = 1.0

  def __post_init__(self):
    checks.require(
        self.schedule in DROP_FRACTION_SCHEDULES,
        'schedule',
        f'must be one of {DROP_FRACTION_SCHEDULES}, got ' f'{self.schedule!r}',
    )
    # 0 is allowed: the topology does not change (a static run that still
    # pays for the dense gradients, a useful control).
    checks.require_in_range('initial_fraction', self.initial_fraction, 0.0, 1.0)
    checks.require_positive_int('end_step', self.end_step)
    checks.require(
        isinstance(self.power, (int, float))
        and math.isfinite(self.power)
        and self.power > 0,
        'power',
        f'must be a positive number, got {self.power!r}',
    )

  def __call__(self, step: Any) -> Any:
    if self.schedule == 'cosine':
      fn = optax.cosine_decay_schedule(self.initial_fraction, self.end_step)
    elif self.schedule == 'constant':
      fn = optax.constant_schedule(self.initial_fraction)
    else:
      fn = optax.polynomial_schedule(
          self.initial_fraction, 0.0, self.power, self.end_step
      )
    return fn(step)


@dataclasses.dataclass(frozen=True)
class PruningSchedule:
  """Gradual magnitude pruning (Zhu & Gupta 2018).

  Sparsity s_t = s_f + (s_i - s_f) (1 - (t - t0) / (t1 - t0)) ** 3 for t in
  [t0, t1], applied at t0, every ``frequency`` steps after it, and at t1 so
  that the final targets are always reached.
  """

  begin_step: int
  end_step: int
  frequency: int
  initial_sparsity: float = 0.0

  def __post_init__(self):
    checks.require_positive_int('frequency', self.frequency)
    checks.require(
        self.begin_step >= 0,
        'begin_step',
        f'must be >= 0, got {self.begin_step!r}',
    )
    checks.require(
        self.end_step > self.begin_step,
        'end_step',
        f'must be greater than begin_step ({self.begin_step}), '
        f'got {self.end_step!r}',
    )
    checks.require_in_range(
        'initial_sparsity', self.initial_sparsity, 0.0, 1.0, high_open=True
    )

  def is_update_step(self, step: Any) -> Any:
    in_range = (step >= self.begin_step) & (step <= self.end_step)
    on_grid = ((step - self.begin_step) % self.frequency == 0) | (
        step == self.end_step
    )
    return in_range & on_grid

  def remaining(self, step: Any) -> Any:
    """(1 - progress) ** 3: 1 before pruning starts, 0 once it has ended."""
    fn = optax.polynomial_schedule(
        1.0,
        0.0,
        3,
        self.end_step - self.begin_step,
        transition_begin=self.begin_step,
    )
    return fn(step)

  def remaining_at(self, step: int) -> float:
    """``remaining`` of a Python step, as a float.

    The same value, computed once per step: cost formulas call it for
    every pruning step of many runs of one schedule (a FLOPs table).
    """
    return _remaining_at(self, int(step))


@functools.lru_cache(maxsize=1 << 16)
def _remaining_at(schedule: PruningSchedule, step: int) -> float:
  return float(schedule.remaining(step))


def scale_steps(steps: int, training_multiplier: float) -> int:
  """A step count scaled by the training multiplier M (rounded)."""
  return int(round(steps * training_multiplier))
