"""When topologies change and by how much: update steps, drop fraction, pruning.

Every function accepts a Python int or a traced integer step, so the same
schedule decides inside the jitted step and on the host (for logging).
"""

import dataclasses
from typing import Any

import optax

DROP_FRACTION_SCHEDULES = ('cosine', 'constant', 'inverse_power')


def _check_positive_int(name: str, value: int) -> None:
  if int(value) != value or value <= 0:
    raise ValueError(f'{name} must be a positive integer, got {value}')


@dataclasses.dataclass(frozen=True)
class UpdateSchedule:
  """Mask updates at steps t with begin <= t < end, every ``interval``."""
  begin_step: int
  end_step: int
  interval: int

  def __post_init__(self):
    _check_positive_int('interval', self.interval)
    if self.begin_step < 0:
      raise ValueError(f'begin_step must be >= 0, got {self.begin_step}')

  def is_update_step(self, step: Any) -> Any:
    return ((step >= self.begin_step) & (step < self.end_step) &
            ((step - self.begin_step) % self.interval == 0))


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
    if self.schedule not in DROP_FRACTION_SCHEDULES:
      raise ValueError(f'drop fraction schedule must be one of '
                       f'{DROP_FRACTION_SCHEDULES}, got {self.schedule!r}')
    if not 0.0 < self.initial_fraction <= 1.0:
      raise ValueError('drop fraction must be in (0, 1], got '
                       f'{self.initial_fraction}')
    _check_positive_int('drop fraction end_step', self.end_step)

  def __call__(self, step: Any) -> Any:
    if self.schedule == 'cosine':
      fn = optax.cosine_decay_schedule(self.initial_fraction, self.end_step)
    elif self.schedule == 'constant':
      fn = optax.constant_schedule(self.initial_fraction)
    else:
      fn = optax.polynomial_schedule(self.initial_fraction, 0.0, self.power,
                                     self.end_step)
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
    _check_positive_int('pruning frequency', self.frequency)
    if not 0 <= self.begin_step < self.end_step:
      raise ValueError('pruning needs 0 <= begin_step < end_step, got '
                       f'begin_step={self.begin_step}, '
                       f'end_step={self.end_step}')
    if not 0.0 <= self.initial_sparsity < 1.0:
      raise ValueError('pruning initial_sparsity must be in [0, 1), got '
                       f'{self.initial_sparsity}')

  def is_update_step(self, step: Any) -> Any:
    in_range = (step >= self.begin_step) & (step <= self.end_step)
    on_grid = ((step - self.begin_step) % self.frequency == 0) | (
        step == self.end_step)
    return in_range & on_grid

  def remaining(self, step: Any) -> Any:
    """(1 - progress) ** 3: 1 before pruning starts, 0 once it has ended."""
    fn = optax.polynomial_schedule(1.0, 0.0, 3, self.end_step - self.begin_step,
                                   transition_begin=self.begin_step)
    return fn(step)

  def sparsity(self, step: Any, final_sparsity: Any) -> Any:
    return final_sparsity + (self.initial_sparsity -
                             final_sparsity) * self.remaining(step)


def scale_steps(steps: int, training_multiplier: float) -> int:
  """A step count scaled by the training multiplier M (rounded)."""
  return int(round(steps * training_multiplier))

