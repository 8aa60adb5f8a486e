"""GraNet: cubic pruning with drop-and-grow, on hand-worked examples."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rigl_jax import TrainState
from rigl_jax.sparse import flops
from rigl_jax.sparse import methods
from rigl_jax.sparse import schedules
from rigl_jax.sparse import structure as structure_lib
from rigl_jax.sparse.methods import granet
from tests import fixtures


def make_granet(
    begin=0,
    end=2,
    frequency=1,
    initial_sparsity=0.25,
    fraction=0.4,
    fraction_schedule='constant',
    regeneration_end=10,
):
  return granet.GraNet(
      schedule=schedules.PruningSchedule(
          begin_step=begin,
          end_step=end,
          frequency=frequency,
          initial_sparsity=initial_sparsity,
      ),
      regeneration=schedules.DropFraction(
          fraction_schedule, fraction, regeneration_end
      ),
  )


# A 4x4 kernel, flat indices row by row: 12 active weights of distinct
# magnitudes (0..11), 4 inactive entries (12..15).
WEIGHTS = np.float32(
    [1.2, -1.1, 1.0, 0.9, -0.8, 0.7, 0.6, -0.5, 0.4, 0.3, -0.2, 0.1] + [0.0] * 4
).reshape(4, 4)
MASK = np.arange(16).reshape(4, 4) < 12
GRADS = np.full(16, 0.1, np.float32)
GRADS[[14, 7, 3, 12]] = [3.0, -2.0, 1.0, -0.5]
GRADS = GRADS.reshape(4, 4)


def hand_worked_state(tx):
  """At step 1 of t0 = 0, t_f = 2, ΔT = 1, s_i = 0.25, s_f = 0.75."""
  method = make_granet()
  state = TrainState.create(
      params={'w': jnp.asarray(WEIGHTS)},
      tx=tx,
      method=method,
      sparsities={'w': 0.75},
      rng=jax.random.key(0),
  )
  return state.replace(
      step=jnp.asarray(1, jnp.int32),
      masks={'w': jnp.asarray(MASK)},
      params={'w': jnp.asarray(WEIGHTS)},
  )


def flat(x):
  return np.asarray(x).reshape(-1)


def test_a_step_prunes_to_the_schedule_then_regrows_by_gradient():
  """Worked by hand.

  Counts: 12 active at s_i = 0.25 of 16, 4 at s_f = 0.75. Step 1 of [0, 2]:
  (1 - 1/2) ** 3 = 0.125 of the 8 to prune remain: 4 + round(1.0) = 5.
  Pruning keeps the 5 largest |w|: indices 0-4 (1.2, 1.1, 1.0, 0.9, 0.8).
  Regeneration, r = 0.4: floor(0.4 * 5) = 2 swaps. Drop the 2 smallest
  |w| of those (3: 0.9, 4: 0.8), keep 0, 1, 2; grow the 2 largest |g|
  among the 13 others: 14 (3.0) and 7 (2.0, pruned a moment before), over
  3 (1.0) and 12 (0.5). New mask: {0, 1, 2, 7, 14}, still 5 active.
  """
  state = hand_worked_state(optax.sgd(0.1))
  method = state.method
  assert not method.is_update_step(0) and method.is_update_step(1)
  assert (
      int(method.num_active_at(1, state.method_state['num_active']['w'])) == 5
  )
  new = state.apply_gradients(grads={'w': jnp.asarray(GRADS)})
  expected = np.zeros(16, bool)
  expected[[0, 1, 2, 7, 14]] = True
  np.testing.assert_array_equal(flat(new.masks['w']), expected)
  # The optimizer step is taken (w - 0.1 g on the old mask), then the new
  # mask zeroes what left it. Entry 7, active before and after, keeps its
  # stepped weight; the newly grown 14 starts at zero.
  params = np.zeros(16, np.float32)
  params[[0, 1, 2]] = [1.19, -1.11, 0.99]
  params[7] = -0.5 + 0.2
  np.testing.assert_allclose(flat(new.params['w']), params, rtol=1e-6)


def test_regrown_entries_start_with_zero_optimizer_state():
  # Adagrad's accumulator starts at 0.1 everywhere, inactive entries too.
  state = hand_worked_state(optax.adagrad(0.1, initial_accumulator_value=0.1))
  new = state.apply_gradients(grads={'w': jnp.asarray(GRADS)})
  (accumulator,) = [
      x
      for x in jax.tree.leaves(new.opt_state)
      if getattr(x, 'shape', 0) == (4, 4)
  ]
  expected = np.zeros(16, np.float32)
  expected[[0, 1, 2]] = 0.1 + 0.1**2  # Kept: accumulated this step's g^2.
  expected[7] = 0.1 + 2.0**2  # Active before and after.
  # 14 grown (it held 0.1) and every entry that left the mask: zero.
  np.testing.assert_allclose(flat(accumulator), expected, rtol=1e-6)


def test_active_count_follows_the_cubic_schedule_then_regrowth_keeps_it():
  method = make_granet(
      begin=2,
      end=12,
      frequency=3,
      initial_sparsity=0.5,
      fraction=0.5,
      fraction_schedule='cosine',
      regeneration_end=20,
  )
  params = {'w': jax.random.normal(jax.random.key(0), (20, 50))}
  state = TrainState.create(
      params=params,
      tx=optax.sgd(0.01),
      method=method,
      sparsities={'w': 0.9},
      rng=jax.random.key(1),
  )
  assert int(state.masks['w'].sum()) == 500  # s_i = 0.5 of 1000.
  updates = [t for t in range(20) if method.is_update_step(t)]
  # Pruning at 5, 8, 11 and t_f = 12; regeneration alone at 14 and 17.
  assert updates == [5, 8, 11, 12, 14, 17]
  step_fn = jax.jit(lambda s, g: s.apply_gradients(grads=g))
  previous = np.asarray(state.masks['w'])
  for t in range(20):
    grads = {'w': jax.random.normal(jax.random.key(100 + t), (20, 50))}
    state = step_fn(state, grads)
    mask = np.asarray(state.masks['w'])
    pruned = [u for u in updates if u <= min(t, 12)]
    if pruned:
      remaining = (1 - (pruned[-1] - 2) / 10) ** 3
      assert mask.sum() == 100 + round(400 * remaining), t
    else:
      assert mask.sum() == 500, t
    if t == 14:  # floor(0.25 (1 + cos(0.7 π)) * 100) = 10 swapped.
      assert 0 < (mask & ~previous).sum() <= 10
    elif t not in updates:
      np.testing.assert_array_equal(mask, previous)
    previous = mask
  assert previous.sum() == 100  # The final sparsity, 0.9.


def test_train_flops_follow_the_schedule_plus_dense_gradients():
  method = make_granet(
      begin=0, end=4, frequency=2, initial_sparsity=0.5, regeneration_end=10
  )
  costs = flops.RunCosts(
      num_steps=10,
      dense_flops=100.0,
      sparse_flops=10.0,
      sparsities={'w': 0.9},
      flops_at=lambda s: 100.0 * (1.0 - s['w']),
  )
  # Updates at 2, 4 (pruning) and 6, 8. Steps 0-2 at s = 0.5 (f = 50),
  # 3-4 at 0.9 - 0.4 * 0.125 = 0.85 (f = 15), 5-9 at 0.9 (f = 10); each
  # update adds f_D - f: 50, 85, 90, 90.
  expected = 3 * (3 * 50 + 2 * 15 + 5 * 10) + 50 + 85 + 90 + 90
  assert method.train_flops(costs) == pytest.approx(expected)
  # Without regeneration, gradual pruning's 3 f(t) alone.
  pruning_only = make_granet(
      begin=0, end=4, frequency=2, initial_sparsity=0.5, fraction=0.0
  )
  assert pruning_only.train_flops(costs) == pytest.approx(690)


@pytest.mark.parametrize(
    'structure,sparsity',
    [
        (structure_lib.MaskStructure('n_m', 2, 4), 0.5),
        (structure_lib.MaskStructure('fan_in'), 0.8),
    ],
)
def test_masks_keep_their_structure(structure, sparsity):
  method = make_granet(
      begin=0, end=4, frequency=2, initial_sparsity=0.0, fraction=0.3
  ).with_structure(structure)
  shape = (16, 6)
  state = TrainState.create(
      params={'w': jax.random.normal(jax.random.key(0), shape)},
      tx=optax.sgd(0.1, momentum=0.9),
      method=method,
      sparsities={'w': sparsity},
      rng=jax.random.key(1),
  )
  step_fn = jax.jit(lambda s, g: s.apply_gradients(grads=g))
  for t in range(9):
    grads = {'w': jax.random.normal(jax.random.key(100 + t), shape)}
    state = step_fn(state, grads)
  assert structure.holds(state.masks['w'], sparsity)


@pytest.mark.parametrize(
    'key,value,message',
    [
        ('regeneration_fraction', 1.5, r'must be in \[0, 1\], got 1.5'),
        ('initial_sparsity', 0.95, r'0.95 is above sparsity \(0.9\)'),
        ('end_step', 1000, r'must be below num_train_steps \(1000\)'),
        ('frequency', 0, 'must be a positive integer, got 0'),
    ],
)
def test_a_bad_value_is_a_one_line_error_naming_its_key(key, value, message):
  error = fixtures.method_config_error('granet', key, value)
  assert re.match(rf'^config\.granet\.{key}: {message}', error), error


@pytest.mark.slow
def test_trains_from_the_command_line(tmp_path, mnist_dir):
  results = fixtures.train_method_from_command_line(
      str(tmp_path / 'run'), mnist_dir, 'granet'
  )
  assert methods.display_name('granet') == 'GraNet'
  assert results['sparsity']['overall'] == pytest.approx(0.9, abs=0.01)
  ratio = results['flops']['train_flops_ratio']
  assert results['flops']['inference_flops_ratio'] < ratio < 1.0
