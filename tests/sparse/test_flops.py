"""The training-FLOPs formulas of the methods, on small numbers."""

import pytest

from rigl_jax.sparse import flops
from rigl_jax.sparse import schedules
from rigl_jax.sparse.methods import pruning
from rigl_jax.sparse.methods import rigl


def run_costs(num_steps, dense, sparse, flops_at=None, sparsities=None):
  return flops.RunCosts(
      num_steps=num_steps,
      dense_flops=dense,
      sparse_flops=sparse,
      sparsities=sparsities or {},
      flops_at=flops_at or (lambda _: sparse),
  )


def test_per_step_formulas():
  assert flops.dense_step(10.0) == 30.0
  assert flops.sparse_step(2.0) == 6.0
  assert flops.dense_gradient_step(2.0, 10.0) == 14.0


def test_rigl_averages_until_end_step_then_sparse():
  # While updating: (3 * 2 * 4 + 2 * 2 + 10) / 5 = 7.6 per step.
  total = rigl.train_flops(
      2.0, 10.0, num_steps=20, begin_step=0, end_step=10, interval=4
  )
  assert total == pytest.approx(10 * 7.6 + 10 * 6.0)
  method = rigl.RigL(
      schedules.UpdateSchedule(0, 10, 4),
      schedules.DropFraction('cosine', 0.3, 10),
  )
  assert method.train_flops(run_costs(20, 10.0, 2.0)) == pytest.approx(total)


def test_pruning_follows_the_schedule():
  method = pruning.GradualPruning(
      schedules.PruningSchedule(begin_step=2, end_step=6, frequency=2)
  )
  # Prunes at steps 2, 4, 6 to 0, 0.5 - 0.5 / 8 and 0.5.
  assert method.sparsities_after(4, {'w': 0.5}) == {'w': 0.4375}
  total = method.train_flops(
      run_costs(
          10,
          100.0,
          50.0,
          sparsities={'w': 0.5},
          flops_at=lambda s: 100.0 * (1.0 - s['w']),
      )
  )
  # Steps 0-2 dense, 3-4 at s=0, 5-6 at s=0.4375, 7-9 at s=0.5.
  assert total == pytest.approx(3 * 300 + 2 * 300 + 2 * 3 * 56.25 + 3 * 150)
