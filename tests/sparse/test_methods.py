"""Each method's topology rule on constructed examples."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import methods
from rigl_jax.sparse import schedules
from rigl_jax import TrainState
from rigl_jax.sparse.methods import small_dense
from rigl_jax.sparse.methods import snfs as snfs_lib


def drop_and_grow_kwargs(
    begin=0, end=100, interval=10, fraction=0.5, schedule='constant'
):
  return dict(
      update_schedule=schedules.UpdateSchedule(begin, end, interval),
      drop_fraction=schedules.DropFraction(schedule, fraction, end),
  )


def one_layer_state(method, mask, weights, tx=None):
  params = {'w': jnp.asarray(weights, jnp.float32)}
  state = TrainState.create(
      params=params,
      tx=tx or optax.sgd(0.1, momentum=0.9),
      method=method,
      sparsities={'w': 0.5},
      rng=jax.random.PRNGKey(0),
  )
  mask = jnp.asarray(mask, bool)
  return state.replace(
      masks={'w': mask}, params=masks_lib.apply_masks(params, {'w': mask})
  )


MASK = [True, True, True, True, False, False, False, False]
WEIGHTS = [0.9, -0.1, 0.5, 0.05, 0.0, 0.0, 0.0, 0.0]


def test_rigl_grows_exactly_the_highest_gradient_inactive_entries():
  method = methods.rigl.RigL(**drop_and_grow_kwargs())
  state = one_layer_state(method, MASK, WEIGHTS)
  grads = {'w': jnp.array([0.0, 0.0, 0.0, 0.0, 0.2, -3.0, 1.0, 0.1])}
  new = state.apply_gradients(grads=grads)
  # k = floor(0.5 * 4) = 2: drop the two smallest |w| (indices 1, 3), grow
  # the two largest |g| among the rest (indices 5, 6).
  np.testing.assert_array_equal(
      new.masks['w'], [True, False, True, False, False, True, True, False]
  )
  # No optimizer step on an update step (the paper's default): the kept
  # weights are unchanged, the grown ones are zero.
  np.testing.assert_array_equal(
      new.params['w'], np.float32([0.9, 0, 0.5, 0, 0, 0, 0, 0])
  )
  assert float(new.topology_stats.last_churn) == 0.5


def test_rigl_optimizer_step_on_update_is_an_option():
  method = methods.rigl.RigL(**drop_and_grow_kwargs(), skip_optimizer=False)
  state = one_layer_state(method, MASK, WEIGHTS, tx=optax.sgd(0.1))
  grads = {'w': jnp.array([1.0, 0.0, 1.0, 0.0, 0.2, -3.0, 1.0, 0.1])}
  new = state.apply_gradients(grads=grads)
  np.testing.assert_allclose(new.params['w'], [0.8, 0, 0.4, 0, 0, 0, 0, 0])


def test_set_grows_only_among_entries_not_kept():
  method = methods.set.Set(**drop_and_grow_kwargs(fraction=0.5))
  mask = np.zeros(200, bool)
  mask[:100] = True
  weights = np.where(mask, np.linspace(1, 2, 200), 0.0)
  state = one_layer_state(method, mask, weights)
  grads = {'w': jnp.where(jnp.asarray(mask), 0.0, 1.0)}
  new = np.asarray(state.apply_gradients(grads=grads).masks['w'])
  assert new.sum() == 100
  # The 50 largest active weights are kept (indices 50..99).
  assert new[50:100].all()
  grown = new & ~mask
  regrown = new[:50]
  assert grown.sum() + regrown.sum() == 50
  # Random growth: it does not follow the (uniform) gradient ranking.
  assert not new[:50].all()


def test_snfs_grows_by_the_gradient_ema_not_the_current_gradient():
  method = methods.snfs.Snfs(
      **drop_and_grow_kwargs(begin=5, fraction=0.5), momentum=0.9
  )
  state = one_layer_state(method, MASK, WEIGHTS, tx=optax.sgd(0.0))
  past = {'w': jnp.array([0, 0, 0, 0, 1.0, 1.0, 0, 0])}
  for _ in range(5):
    state = state.apply_gradients(grads=past)
  now = {'w': jnp.array([0, 0, 0, 0, 0, 0, 3.0, 3.0])}
  state = state.apply_gradients(grads=now)
  # EMA at 4, 5: 1 - 0.9**5 = 0.41 (then x 0.9); at 6, 7: 0.1 * 3 = 0.3.
  np.testing.assert_array_equal(
      state.masks['w'], [True, False, True, False, True, True, False, False]
  )


def test_snfs_redistribution_keeps_the_total_and_favours_high_momentum():
  alloc = snfs_lib.allocate_proportionally(
      jnp.asarray(100), jnp.array([3.0, 1.0, 0.0]), jnp.array([60, 100, 50])
  )
  np.testing.assert_array_equal(alloc, [60, 40, 0])
  method = methods.snfs.Snfs(
      **drop_and_grow_kwargs(fraction=0.5), redistribute=True
  )
  params = {'a': jnp.ones((10, 10)), 'b': jnp.ones((10, 10))}
  state = TrainState.create(
      params=params,
      tx=optax.sgd(0.1),
      method=method,
      sparsities={'a': 0.5, 'b': 0.5},
      rng=jax.random.PRNGKey(0),
  )
  grads = {'a': jnp.full((10, 10), 5.0), 'b': jnp.full((10, 10), 0.1)}
  new = state.apply_gradients(grads=grads)
  counts = {k: int(v.sum()) for k, v in new.masks.items()}
  assert counts['a'] + counts['b'] == 100
  assert counts['a'] > counts['b']


def test_snip_keeps_the_top_sensitivity_entries_per_layer():
  method = methods.snip.Snip()
  params = {
      'a': jnp.array([[1.0, 2.0], [3.0, 4.0]]),
      'b': jnp.array([[1.0, 1.0], [1.0, 1.0]]),
  }
  state = TrainState.create(
      params=params,
      tx=optax.sgd(0.1),
      method=method,
      sparsities={'a': 0.5, 'b': 0.75},
      rng=jax.random.PRNGKey(0),
  )
  assert bool(state.masks['a'].all())  # SNIP starts dense.
  grads = {
      'a': jnp.array([[4.0, 0.1], [1.0, 0.5]]),
      'b': jnp.array([[0.0, 9.0], [0.1, 0.2]]),
  }
  new = state.apply_gradients(grads=grads)
  # |g * w|: a = [[4, .2], [3, 2]] -> keep 2: (0,0), (1,0); b keeps (0,1).
  np.testing.assert_array_equal(new.masks['a'], [[True, False], [True, False]])
  np.testing.assert_array_equal(new.masks['b'], [[False, True], [False, False]])
  np.testing.assert_array_equal(new.params['a'], [[1.0, 0], [3.0, 0]])
  later = new.apply_gradients(grads=grads)
  np.testing.assert_array_equal(later.masks['a'], new.masks['a'])


def test_snip_global_ranking_uses_one_budget():
  method = methods.snip.Snip(global_ranking=True)
  params = {'a': jnp.ones((2, 2)), 'b': jnp.ones((2, 2))}
  state = TrainState.create(
      params=params,
      tx=optax.sgd(0.1),
      method=method,
      sparsities={'a': 0.5, 'b': 0.5},
      rng=jax.random.PRNGKey(0),
  )
  grads = {'a': jnp.array([[9.0, 8.0], [7.0, 6.0]]), 'b': jnp.full((2, 2), 1.0)}
  new = state.apply_gradients(grads=grads)
  assert int(new.masks['a'].sum()) == 4 and int(new.masks['b'].sum()) == 0


def test_pruning_follows_the_cubic_schedule_and_only_removes():
  schedule = schedules.PruningSchedule(begin_step=2, end_step=12, frequency=3)
  method = methods.pruning.GradualPruning(schedule=schedule)
  params = {'w': jax.random.normal(jax.random.PRNGKey(0), (20, 50))}
  state = TrainState.create(
      params=params,
      tx=optax.sgd(0.01),
      method=method,
      sparsities={'w': 0.9},
      rng=jax.random.PRNGKey(1),
  )
  step_fn = jax.jit(lambda s, g: s.apply_gradients(grads=g))
  previous = np.asarray(state.masks['w'])
  for t in range(16):
    grads = {'w': jax.random.normal(jax.random.PRNGKey(t), (20, 50))}
    state = step_fn(state, grads)
    mask = np.asarray(state.masks['w'])
    assert not (mask & ~previous).any()
    if t >= 2:
      last = max(u for u in range(t + 1) if schedule.is_update_step(u))
      remaining = (1 - (last - 2) / 10) ** 3
      assert mask.sum() == 100 + round(900 * remaining)
    previous = mask
  assert previous.sum() == 100


def test_small_dense_find_width_matches_a_parameter_count():
  def lenet_params(width):
    h1, h2 = max(1, round(300 * width)), max(1, round(100 * width))
    return 784 * h1 + h1 + h1 * h2 + h2 + h2 * 10 + 10

  target = 26_000
  width = small_dense.find_width(lenet_params, target)
  assert abs(lenet_params(width) - target) <= 784 + 101
  assert small_dense.find_width(lenet_params, 10**9) == 1.0


def test_registry_builds_from_config_and_rejects_unknown_methods():
  config = ml_collections.ConfigDict(
      {
          'method': 'rigl',
          'num_train_steps': 100,
          'mask_update': dict(
              begin_step=0,
              end_step=50,
              interval=5,
              drop_fraction=0.3,
              schedule='cosine',
              power=1.0,
              skip_optimizer_step=None,
              grow_init='zeros',
              drop_noise_std=0.0,
          ),
      }
  )
  method = methods.from_config(config)
  assert isinstance(method, methods.rigl.RigL) and method.skip_optimizer_step
  config.method = 'lottery'
  with pytest.raises(ValueError, match='method must be one of'):
    methods.from_config(config)


@pytest.mark.parametrize('name', list(methods.METHODS))
def test_every_method_describes_itself(name):
  """What the registry reads of a method: one module says it all."""
  method = methods.METHODS[name]
  assert method.name == name and method.display_name
  assert methods.display_name(name) == method.display_name
  blocks = method.config_defaults()
  for block in blocks.values():
    assert isinstance(block, dict) and block
  for key in method.scaled_step_keys + tuple(method.smoke_overrides(2)):
    block, field = key.split('.')
    assert field in blocks[block], key


def test_the_paper_methods_come_first_in_the_paper_order():
  # Methods beyond the paper's follow these, alphabetically.
  assert list(methods.METHODS)[:8] == [
      'dense',
      'small_dense',
      'static',
      'snip',
      'set',
      'snfs',
      'rigl',
      'pruning',
  ]
