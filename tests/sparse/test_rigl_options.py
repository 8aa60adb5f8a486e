"""The reference RigL's options on drop-and-grow: growth values, drop noise,
begin_step under the training multiplier; on hand-worked examples."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rigl_jax import TrainState
from rigl_jax.sparse import methods
from rigl_jax.sparse import schedules
from rigl_jax.sparse.methods import drop_and_grow
from rigl_jax.sparse.methods import rigl
from rigl_jax.sparse.methods import set as set_method
from rigl_jax.training import config as run_config
from rigl_jax.training import identity


def make(cls=rigl.RigL, **kwargs):
  return cls(
      update_schedule=schedules.UpdateSchedule(0, 10, 1),
      drop_fraction=schedules.DropFraction('constant', 0.5, 10),
      **kwargs,
  )


# One layer of 4: 1.0 and 0.5 active. A step with r = 0.5 drops 0.5 (index
# 1) and grows the largest |g| among indices 1-3: index 2 (-0.8).
WEIGHTS = np.float32([1.0, 0.5, 0.0, 0.0])
MASK = np.bool_([True, True, False, False])
GRADS = np.float32([0.1, 0.2, -0.8, 0.3])


def step_once(method):
  state = TrainState.create(
      params={'w': jnp.asarray(WEIGHTS)},
      tx=optax.sgd(0.1),
      method=method,
      sparsities={'w': 0.5},
      rng=jax.random.key(0),
  )
  state = state.replace(
      masks={'w': jnp.asarray(MASK)}, params={'w': jnp.asarray(WEIGHTS)}
  )
  new = state.apply_gradients(grads={'w': jnp.asarray(GRADS)})
  np.testing.assert_array_equal(new.masks['w'], [True, False, True, False])
  return np.asarray(new.params['w'])


@pytest.mark.parametrize(
    'grow_init,grown',
    [
        ('zeros', 0.0),  # The paper's.
        ('grad_scale', -0.8),  # The dense gradient.
        ('grad_scale_2', -0.4),  # Divided by 2.
        ('grad_sign_4', -0.25),  # sign(-0.8) / 4.
    ],
)
def test_rigl_grown_connections_start_from_grow_init(grow_init, grown):
  # RigL takes no optimizer step on an update step: index 0 keeps 1.0.
  params = step_once(make(grow_init=grow_init))
  np.testing.assert_allclose(params, [1.0, 0.0, grown, 0.0], rtol=1e-6)


def test_random_uniform_growth_lies_within_the_mean_magnitude():
  # mean |w| over the layer, zeros included: (1.0 + 0.5) / 4 = 0.375; with
  # '_3' the grown value lies in [-0.125, 0.125].
  params = step_once(make(grow_init='random_uniform_3'))
  assert params[0] == 1.0 and params[1] == 0.0 and params[3] == 0.0
  assert 0.0 < abs(params[2]) <= 0.125


def test_grow_values_scale_by_the_layer_statistics():
  # Half the entries +-1, half 0: mean 0, std sqrt(0.5); mean |w| 0.5.
  weights = jnp.asarray(np.tile([1.0, 0.0, -1.0, 0.0], 25_000), jnp.float32)
  rng = jax.random.key(0)
  normal = drop_and_grow.grow_values('random_normal', 2.0, rng, weights, None)
  assert float(jnp.std(normal)) == pytest.approx(np.sqrt(0.5) / 2, rel=0.02)
  uniform = drop_and_grow.grow_values('random_uniform', 1.0, rng, weights, None)
  assert float(jnp.max(jnp.abs(uniform))) <= 0.5
  assert float(jnp.max(jnp.abs(uniform))) > 0.49  # U(-0.5, 0.5) fills it.


@pytest.mark.parametrize(
    'value,parsed',
    [
        ('zeros', ('zeros', 1.0)),
        ('random_normal_2', ('random_normal', 2.0)),
        ('random_uniform_.5', ('random_uniform', 0.5)),
        ('grad_sign_0.25', ('grad_sign', 0.25)),
    ],
)
def test_grow_init_parses_the_reference_divisor(value, parsed):
  assert drop_and_grow.parse_grow_init(value) == parsed


def test_no_noise_leaves_the_drop_weights_as_they_are():
  method = make(cls=set_method.Set)
  params = {'w': jnp.asarray(WEIGHTS)}
  assert method.drop_weights(jax.random.key(0), params, {'w': MASK}) is params


def test_drop_noise_is_normal_with_the_configured_std():
  # Active weights of |w| 2.0: the ranked magnitudes are 2.0 + N(0, 0.1).
  size = 40_000
  params = {'w': jnp.full((size,), -2.0), 'b': jnp.zeros(3)}
  masks = {'w': jnp.ones(size, bool), 'b': None}
  method = make(cls=set_method.Set, drop_noise_std=0.1)
  noisy = method.drop_weights(jax.random.key(0), params, masks)
  assert noisy['b'] is params['b']
  noise = np.asarray(noisy['w']) - 2.0
  assert float(np.mean(noise)) == pytest.approx(0.0, abs=0.003)
  assert float(np.std(noise)) == pytest.approx(0.1, rel=0.02)


def test_the_reference_noise_does_not_reorder_distinct_magnitudes():
  # |w| 1.0 and 0.5 are 5e4 noise std apart: the same drop as without.
  params = step_once(make(drop_noise_std=1e-5))
  np.testing.assert_allclose(params, [1.0, 0.0, 0.0, 0.0])


def test_mask_update_begin_and_end_steps_scale_with_the_multiplier():
  config = run_config.base_config()
  config.method = 'rigl'
  config.num_train_steps = 1000
  config.training_multiplier = 2.0
  config.mask_update.begin_step = 100
  config.mask_update.end_step = 750
  resolved = run_config.resolve(config)
  assert resolved.mask_update.begin_step == 200
  assert resolved.mask_update.end_step == 1500
  schedule = methods.from_config(resolved).update_schedule
  assert (schedule.begin_step, schedule.end_step) == (200, 1500)


def test_a_stored_config_without_the_new_keys_keeps_its_identity():
  config = run_config.base_config()
  config.method = 'rigl'
  flat = identity.flatten(config)
  assert flat['mask_update.grow_init'] == 'zeros'
  assert flat['mask_update.drop_noise_std'] == 0.0
  old = {
      k: v
      for k, v in flat.items()
      if k not in ('mask_update.grow_init', 'mask_update.drop_noise_std')
  }
  assert identity.restrict(old) == identity.restrict(flat)


@pytest.mark.parametrize(
    'method,key,value,message',
    [
        ('rigl', 'grow_init', 'initial_dist', 'must be one of'),
        ('set', 'grow_init', 'grad_scale', r"must be one of \['zeros',"),
        ('rigl', 'grow_init', 'random_normal_0', 'must be one of'),
        ('snfs', 'drop_noise_std', -1.0, 'must be a number >= 0, got -1.0'),
    ],
)
def test_a_bad_option_is_a_one_line_error_naming_its_key(
    method, key, value, message
):
  config = run_config.base_config()
  config.method = method
  config.mask_update[key] = value
  with pytest.raises(
      run_config.ConfigError, match=rf'^config\.mask_update\.{key}: {message}'
  ) as error:
    with run_config.as_config_errors():
      methods.from_config(config)
  assert '\n' not in str(error.value)
