"""Update, drop-fraction and pruning schedules."""

import math

import jax.numpy as jnp
import pytest

from rigl_jax.sparse import checks
from rigl_jax.sparse import schedules


def test_update_schedule_steps():
  schedule = schedules.UpdateSchedule(begin_step=10, end_step=40, interval=10)
  updates = [t for t in range(60) if schedule.is_update_step(t)]
  assert updates == [10, 20, 30]
  assert bool(schedule.is_update_step(jnp.asarray(20)))
  assert not bool(schedule.is_update_step(jnp.asarray(21)))


@pytest.mark.parametrize('t', [0, 25, 50, 99, 100])
def test_drop_fractions(t):
  cosine = schedules.DropFraction('cosine', 0.3, end_step=100)
  constant = schedules.DropFraction('constant', 0.3, end_step=100)
  inverse = schedules.DropFraction('inverse_power', 0.3, end_step=100, power=2)
  assert float(cosine(t)) == pytest.approx(
      0.15 * (1 + math.cos(math.pi * t / 100)), abs=1e-6
  )
  assert float(constant(t)) == pytest.approx(0.3)
  assert float(inverse(t)) == pytest.approx(0.3 * (1 - t / 100) ** 2, abs=1e-6)


def test_pruning_schedule_is_cubic_and_hits_the_end():
  schedule = schedules.PruningSchedule(
      begin_step=100, end_step=350, frequency=100
  )
  assert [t for t in range(500) if schedule.is_update_step(t)] == [
      100,
      200,
      300,
      350,
  ]
  for t in (0, 100, 200, 300, 350, 400):
    progress = min(max((t - 100) / 250, 0.0), 1.0)
    assert float(schedule.remaining(t)) == pytest.approx(
        (1 - progress) ** 3, abs=1e-6
    )


@pytest.mark.parametrize(
    'make,name',
    [
        (lambda: schedules.UpdateSchedule(0, 10, 0), 'interval'),
        (lambda: schedules.UpdateSchedule(5, 5, 1), 'end_step'),
        (lambda: schedules.DropFraction('linear', 0.3, 10), 'schedule'),
        (lambda: schedules.UpdateSchedule(0, -1, 2), 'end_step'),
        (lambda: schedules.UpdateSchedule(-3, 10, 2), 'begin_step'),
        (
            lambda: schedules.DropFraction('cosine', -0.1, 10),
            'initial_fraction',
        ),
        (lambda: schedules.DropFraction('cosine', 1.5, 10), 'initial_fraction'),
        (
            lambda: schedules.DropFraction('cosine', float('nan'), 10),
            'initial_fraction',
        ),
        (
            lambda: schedules.DropFraction(
                'inverse_power', 0.3, 10, float('nan')
            ),
            'power',
        ),
        (lambda: schedules.PruningSchedule(10, 5, 1), 'end_step'),
        (lambda: schedules.PruningSchedule(0, 5, 0), 'frequency'),
    ],
)
def test_bad_schedule_arguments_name_the_argument(make, name):
  with pytest.raises(checks.InvalidArgument) as info:
    make()
  assert info.value.name == name


def test_scale_steps():
  assert schedules.scale_steps(32000, 5) == 160000
  assert schedules.scale_steps(75000, 0.5) == 37500


def test_a_drop_fraction_of_zero_means_no_change():
  fraction = schedules.DropFraction('cosine', 0.0, 10)
  assert float(fraction(0)) == 0.0 and float(fraction(5)) == 0.0
