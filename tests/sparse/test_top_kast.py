"""Top-KAST: forward and backward sets, exploration penalty, by hand."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rigl_jax import TrainState
from rigl_jax.sparse import flops
from rigl_jax.sparse import methods
from rigl_jax.sparse import structure as structure_lib
from rigl_jax.sparse.methods import top_kast
from tests import fixtures

# One 2x4 kernel, flat indices row by row, magnitudes decreasing.
WEIGHTS = np.float32([0.8, -0.6, 0.5, 0.4, -0.3, 0.2, 0.1, 0.05]).reshape(2, 4)
# The loss gradient w.r.t. α: entry 4 is outside B, so its 1.0 is ignored.
GRADS = np.float32([0.2, 0.0, -0.8, 0.0, 1.0, 0.0, 0.0, 0.0]).reshape(2, 4)


def flat(x):
  return np.asarray(x).reshape(-1)


def make_state(tx, frequency=1):
  # Sparsity 0.75: A holds 2 of 8 (D = 0.25); M = 0.25: B holds 4.
  method = top_kast.TopKast(
      backward_extra=0.25, penalty=0.1, frequency=frequency
  )
  return TrainState.create(
      params={'w': jnp.asarray(WEIGHTS)},
      tx=tx,
      method=method,
      sparsities={'w': 0.75},
      rng=jax.random.key(0),
  )


def test_sets_start_from_the_largest_initial_weights():
  state = make_state(optax.sgd(0.5))
  forward = np.zeros(8, bool)
  forward[[0, 1]] = True
  backward = np.zeros(8, bool)
  backward[[0, 1, 2, 3]] = True
  np.testing.assert_array_equal(flat(state.masks['w']), forward)
  np.testing.assert_array_equal(
      flat(state.method_state['backward']['w']), backward
  )
  # The model sees α = θ on A; θ outside A waits in the method state.
  np.testing.assert_array_equal(
      flat(state.params['w']), np.where(forward, flat(WEIGHTS), 0.0)
  )
  np.testing.assert_array_equal(
      flat(state.method_state['inactive_weights']['w']),
      np.where(forward, 0.0, flat(WEIGHTS)),
  )


def test_a_step_updates_b_with_the_penalty_then_recomputes_the_sets():
  """Worked by hand, SGD with learning rate 0.5 and λ = 0.1.

  Gradient plus penalty: λ θ on A (0: 0.08, 1: -0.06), λ θ / D = 0.4 θ on
  B \\ A (2: 0.2, 3: 0.16): 0: 0.28, 1: -0.06, 2: -0.6, 3: 0.16. Then
  θ = 0: 0.66, 1: -0.57, 2: 0.8, 3: 0.32, and 4..7 unchanged. The two
  largest |θ| are 2 and 0 (A), the four largest 2, 0, 1, 3 (B).
  """
  state = make_state(optax.sgd(0.5))
  new = state.apply_gradients(grads={'w': jnp.asarray(GRADS)})
  theta = np.float32([0.66, -0.57, 0.8, 0.32, -0.3, 0.2, 0.1, 0.05])
  forward = np.zeros(8, bool)
  forward[[0, 2]] = True
  backward = np.zeros(8, bool)
  backward[[0, 1, 2, 3]] = True
  np.testing.assert_array_equal(flat(new.masks['w']), forward)
  np.testing.assert_array_equal(
      flat(new.method_state['backward']['w']), backward
  )
  # Entry 2 enters the forward set with the value it reached in B \ A.
  np.testing.assert_allclose(
      flat(new.params['w']), np.where(forward, theta, 0.0), rtol=1e-6
  )
  np.testing.assert_allclose(
      flat(new.method_state['inactive_weights']['w']),
      np.where(forward, 0.0, theta),
      rtol=1e-6,
  )
  assert float(new.topology_stats.last_churn) == pytest.approx(0.5)


def test_sets_hold_between_recomputations():
  state = make_state(optax.sgd(0.5), frequency=2)
  state = state.apply_gradients(grads={'w': jnp.zeros((2, 4))})  # Step 0.
  before = np.asarray(state.masks['w'])
  # Step 1 is not a recomputation: entry 2 grows past entry 1 but A stays.
  new = state.apply_gradients(grads={'w': jnp.asarray(GRADS)})
  np.testing.assert_array_equal(np.asarray(new.masks['w']), before)
  assert abs(float(flat(new.method_state['inactive_weights']['w'])[2])) > 0.7


def test_optimizer_state_is_kept_only_where_a_holds_before_and_after():
  # Adagrad's accumulator starts at 0.1 everywhere.
  state = make_state(optax.adagrad(0.5, initial_accumulator_value=0.1))
  new = state.apply_gradients(grads={'w': jnp.asarray(GRADS)})
  (accumulator,) = [
      x
      for x in jax.tree.leaves(new.opt_state)
      if getattr(x, 'shape', 0) == (2, 4)
  ]
  # Gradient plus penalty as with SGD: 0.28, -0.06, -0.6, 0.16 on B. The
  # step -0.5 g / sqrt(0.1 + g^2) takes θ to 0.469, -0.507, 0.942, 0.174:
  # A becomes {2, 1}. Only entry 1 is in A before and after, with
  # 0.1 + 0.06^2; the other entries of B (0, 3) lose their state.
  expected = np.zeros(8, np.float32)
  expected[1] = 0.1 + 0.06**2
  forward = np.zeros(8, bool)
  forward[[1, 2]] = True
  np.testing.assert_array_equal(flat(new.masks['w']), forward)
  np.testing.assert_allclose(flat(accumulator), expected, rtol=1e-5)


def test_train_flops_are_forward_at_a_and_weight_gradients_at_b():
  method = top_kast.TopKast(backward_extra=0.4)
  costs = flops.RunCosts(
      num_steps=10,
      dense_flops=100.0,
      sparse_flops=10.0,
      sparsities={'w': 0.9},
      flops_at=lambda s: 100.0 * (1.0 - s['w']),
  )
  # f_A = 10, f_B at sparsity 0.5 = 50: 2 * 10 + 50 per step.
  assert method.train_flops(costs) == pytest.approx(700.0)


@pytest.mark.parametrize(
    'structure,sparsity,backward_per_group',
    [
        (structure_lib.MaskStructure('n_m', 2, 4), 0.5, 3),
        (structure_lib.MaskStructure('fan_in'), 0.8, 7),
    ],
)
def test_sets_keep_their_structure(structure, sparsity, backward_per_group):
  # M = 0.25: 2:4 forward, 3 of 4 backward; fan-in 3 of 16, 7 of 16.
  method = top_kast.TopKast(backward_extra=0.25).with_structure(structure)
  shape = (16, 6)
  state = TrainState.create(
      params={'w': jax.random.normal(jax.random.key(0), shape)},
      tx=optax.sgd(0.1, momentum=0.9),
      method=method,
      sparsities={'w': sparsity},
      rng=jax.random.key(1),
  )
  step_fn = jax.jit(lambda s, g: s.apply_gradients(grads=g))
  for t in range(5):
    grads = {'w': jax.random.normal(jax.random.key(100 + t), shape)}
    state = step_fn(state, grads)
  assert structure.holds(state.masks['w'], sparsity)
  backward = np.asarray(state.method_state['backward']['w'])
  counts = np.asarray(structure.to_groups(backward)).sum(axis=1)
  assert (counts == backward_per_group).all()
  assert not (np.asarray(state.masks['w']) & ~backward).any()


@pytest.mark.parametrize(
    'key,value,message',
    [
        ('backward_sparsity', 0.95, r'must be in \[0, 0.9\], got 0.95'),
        ('penalty', -1.0, r'must be in \[0, 1\], got -1.0'),
        ('frequency', 0, 'must be a positive integer, got 0'),
    ],
)
def test_a_bad_value_is_a_one_line_error_naming_its_key(key, value, message):
  error = fixtures.method_config_error('top_kast', key, value)
  assert re.match(rf'^config\.top_kast\.{key}: {message}', error), error


@pytest.mark.slow
def test_trains_from_the_command_line(tmp_path, mnist_dir):
  results = fixtures.train_method_from_command_line(
      str(tmp_path / 'run'), mnist_dir, 'top_kast'
  )
  assert methods.display_name('top_kast') == 'Top-KAST'
  assert results['sparsity']['overall'] == pytest.approx(0.9, abs=0.01)
  ratio = results['flops']['train_flops_ratio']
  assert results['flops']['inference_flops_ratio'] < ratio < 1.0
