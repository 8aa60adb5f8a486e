"""MEST: score drop, random growth, elastic mutation, by hand."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rigl_jax import TrainState
from rigl_jax.sparse import methods
from rigl_jax.sparse import structure as structure_lib
from rigl_jax.sparse.methods import mest
from rigl_jax.training import config as run_config
from tests import fixtures

# A 4x4 kernel, flat indices row by row: the initial weights of 0..7 are
# the larger, so the magnitude start makes them the active ones.
WEIGHTS = np.float32(
    [0.9, -0.8, 0.7, 0.6, -0.5, 0.4, 0.3, -0.2]
    + [0.1, -0.1, 0.05, 0.05, -0.02, 0.01, 0.01, 0.0]
).reshape(4, 4)
GRADS = np.zeros(16, np.float32)
GRADS[[5, 6, 12]] = [0.5, -0.3, 4.0]
GRADS = GRADS.reshape(4, 4)
ACTIVE = np.arange(16) < 8


def flat(x):
  return np.asarray(x).reshape(-1)


def make_state(tx, rate=0.25, grad_coefficient=1.0):
  method = mest.Mest(
      interval=1,
      mutation_rates=(rate, 0.0),
      decay_steps=(5,),
      grad_coefficient=grad_coefficient,
  )
  return TrainState.create(
      params={'w': jnp.asarray(WEIGHTS)},
      tx=tx,
      method=method,
      sparsities={'w': 0.5},
      rng=jax.random.key(0),
  )


def test_training_starts_from_the_largest_initial_weights():
  state = make_state(optax.sgd(0.1))
  np.testing.assert_array_equal(flat(state.masks['w']), ACTIVE)


def test_a_mutation_drops_the_lowest_scores_and_regrows_at_random():
  """Worked by hand: m = 0.25 of the 8 active weights, λ = 1.

  k = floor(0.25 * 8) = 2. Scores |w| + |g| of the active 0..7: 0.9, 0.8,
  0.7, 0.6, 0.5, 0.9, 0.6, 0.2: entries 7 and 4 go (by |w| alone 7 and 6
  would). Two entries grow among the rest, whatever their gradient.
  """
  state = make_state(optax.sgd(0.1))
  new = state.apply_gradients(grads={'w': jnp.asarray(GRADS)})
  mask = flat(new.masks['w'])
  kept = [0, 1, 2, 3, 5, 6]
  assert mask[kept].all()
  assert mask.sum() == 8
  grown = np.flatnonzero(mask & ~np.isin(np.arange(16), kept))
  assert len(grown) == 2
  assert set(grown) <= {4, 7} | set(range(8, 16))
  # The step's optimizer step on the old mask (SGD, 0.1), then the masks:
  # kept weights stepped, grown ones at zero unless they were active.
  stepped = np.where(ACTIVE, flat(WEIGHTS) - 0.1 * flat(GRADS), 0.0)
  expected = np.where(mask & ACTIVE, stepped, 0.0)
  np.testing.assert_allclose(flat(new.params['w']), expected, rtol=1e-6)


def test_by_magnitude_alone_without_the_gradient_term():
  state = make_state(optax.sgd(0.1), grad_coefficient=0.0)
  new = state.apply_gradients(grads={'w': jnp.asarray(GRADS)})
  mask = flat(new.masks['w'])
  assert mask[[0, 1, 2, 3, 4, 5]].all()  # 6 (0.3) and 7 (0.2) go.
  assert mask.sum() == 8


def test_mutated_entries_start_with_zero_optimizer_state():
  state = make_state(optax.adagrad(0.1, initial_accumulator_value=0.1))
  new = state.apply_gradients(grads={'w': jnp.asarray(GRADS)})
  (accumulator,) = [
      x
      for x in jax.tree.leaves(new.opt_state)
      if getattr(x, 'shape', 0) == (4, 4)
  ]
  mask = flat(new.masks['w'])
  # Kept where active before and after: 0.1 + g^2 of this step's gradient
  # (masked to the active entries); every other entry starts at zero.
  expected = np.where(mask & ACTIVE, 0.1 + flat(GRADS) ** 2, 0.0)
  np.testing.assert_allclose(flat(accumulator), expected, rtol=1e-6)


def test_elastic_mutation_decays_to_a_fixed_topology():
  method = mest.Mest(
      interval=3, mutation_rates=(0.02, 0.01, 0.0), decay_steps=(6, 9)
  )
  assert [t for t in range(15) if method.is_update_step(t)] == [0, 3, 6]
  assert [method.mutation_rate(t) for t in (0, 5, 6, 8, 9)] == [
      0.02,
      0.02,
      0.01,
      0.01,
      0.0,
  ]
  # Traced steps agree with host steps.
  traced = jax.jit(method.is_update_step)
  assert [t for t in range(15) if traced(t)] == [0, 3, 6]


def test_decay_fractions_become_steps_of_the_run():
  config = run_config.base_config()
  config.method = 'mest'
  method = methods.from_config(config)
  # The official 90 and 120 of 160 epochs, on 1000 steps.
  assert method.decay_steps == (562, 750)
  assert method.mutation_rates == (0.2, 0.1, 0.0)
  # Training FLOPs: 3 f_S per step, as SET.
  assert type(method).train_flops is methods.base.SparseMethod.train_flops


@pytest.mark.parametrize(
    'structure,sparsity',
    [
        (structure_lib.MaskStructure('n_m', 2, 4), 0.5),
        (structure_lib.MaskStructure('fan_in'), 0.8),
    ],
)
def test_masks_keep_their_structure(structure, sparsity):
  method = mest.Mest(
      interval=2, mutation_rates=(0.1, 0.0), decay_steps=(8,)
  ).with_structure(structure)
  shape = (16, 6)
  state = TrainState.create(
      params={'w': jax.random.normal(jax.random.key(0), shape)},
      tx=optax.sgd(0.1, momentum=0.9),
      method=method,
      sparsities={'w': sparsity},
      rng=jax.random.key(1),
  )
  assert structure.holds(state.masks['w'], sparsity)
  step_fn = jax.jit(lambda s, g: s.apply_gradients(grads=g))
  first = np.asarray(state.masks['w'])
  for t in range(7):
    grads = {'w': jax.random.normal(jax.random.key(100 + t), shape)}
    state = step_fn(state, grads)
  assert structure.holds(state.masks['w'], sparsity)
  assert (np.asarray(state.masks['w']) != first).any()


@pytest.mark.parametrize(
    'key,value,message',
    [
        ('interval', 0, 'must be a positive integer, got 0'),
        ('mutation_rates', (0.02, 1.5, 0.0), r'must be in \[0, 1\], got 1.5'),
        ('mutation_rates', (0.02, 0.0), 'needs one rate more than'),
        ('decay_fractions', (0.75, 0.5), 'must be increasing'),
        ('grad_coefficient', -1.0, r'must be in \[0, inf\], got -1.0'),
    ],
)
def test_a_bad_value_is_a_one_line_error_naming_its_key(key, value, message):
  error = fixtures.method_config_error('mest', key, value)
  assert re.match(rf'^config\.mest\.{key}: {message}', error), error


@pytest.mark.slow
def test_trains_from_the_command_line(tmp_path, mnist_dir):
  results = fixtures.train_method_from_command_line(
      str(tmp_path / 'run'), mnist_dir, 'mest'
  )
  assert methods.display_name('mest') == 'MEST'
  assert results['topology']['updates'] >= 1
  assert results['sparsity']['overall'] == pytest.approx(0.9, abs=0.01)
  assert results['flops']['train_flops_ratio'] == pytest.approx(
      results['flops']['inference_flops_ratio']
  )
