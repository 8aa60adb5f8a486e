"""Invariants of sparse training under any mix of steps and updates."""

from hypothesis import assume
from hypothesis import given
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rigl_jax import get_sparsities
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import methods
from rigl_jax.sparse import schedules
from rigl_jax import TrainState
from rigl_jax.sparse import transforms

OPTIMIZERS = {
    'momentum': lambda: optax.sgd(0.1, momentum=0.9),
    'nesterov': lambda: optax.sgd(0.1, momentum=0.9, nesterov=True),
    'adam': lambda: optax.adam(1e-2),
    'adamw': lambda: optax.adamw(1e-2, weight_decay=0.1),
    'clip_decay_sgd': lambda: optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.add_decayed_weights(5e-4),
        optax.sgd(0.1, momentum=0.9),
    ),
}
CONSTANT_COUNT_METHODS = ('static', 'set', 'snfs', 'rigl')


def make_method(name, interval, fraction, schedule, end):
  if name == 'static':
    return methods.static.Static()
  if name == 'pruning':
    return methods.pruning.GradualPruning(
        schedule=schedules.PruningSchedule(0, end, interval)
    )
  if name == 'snip':
    return methods.snip.Snip()
  return methods.get_method_class(name)(
      update_schedule=schedules.UpdateSchedule(0, end, interval),
      drop_fraction=schedules.DropFraction(schedule, fraction, end),
  )


def make_params(shapes, seed):
  keys = jax.random.split(jax.random.PRNGKey(seed), len(shapes))
  return {
      f'layer_{i}': {
          'kernel': jax.random.normal(k, shape),
          'bias': jnp.zeros(shape[-1]),
      }
      for i, (k, shape) in enumerate(zip(keys, shapes))
  }


def grown_state_is_zero(state, grown):
  """Whether every param-shaped optimizer leaf is zero at grown entries."""
  grown_or_false = jax.tree.map(
      lambda g: False if g is None else g, grown, is_leaf=lambda x: x is None
  )
  checks = optax.tree_utils.tree_map_params(
      state.tx,
      lambda s, g: True
      if g is False
      else bool(jnp.all(jnp.where(g, s == 0, True))),
      state.opt_state,
      grown_or_false,
      transform_non_params=lambda _: True,
  )
  return all(jax.tree.leaves(checks))


def run(method, optimizer, params, sparsities, num_steps, seed):
  """Steps a state with random gradients; yields (old, new) each step."""
  state = TrainState.create(
      params=params,
      tx=optimizer,
      method=method,
      sparsities=sparsities,
      rng=jax.random.PRNGKey(seed),
  )
  step = jax.jit(lambda s, g: s.apply_gradients(grads=g))
  for t in range(num_steps):
    grads = jax.tree.map(
        lambda p, t=t: jax.random.normal(jax.random.PRNGKey(1000 + t), p.shape),
        params,
    )
    new = step(state, grads)
    yield state, new
    state = new


shapes_strategy = st.lists(
    st.one_of(
        st.tuples(st.integers(2, 12), st.integers(2, 12)),
        st.tuples(
            st.integers(1, 3),
            st.integers(1, 3),
            st.integers(1, 4),
            st.integers(2, 6),
        ),
    ),
    min_size=1,
    max_size=3,
)


@given(
    shapes=shapes_strategy,
    sparsity=st.floats(0.1, 0.95),
    method_name=st.sampled_from(CONSTANT_COUNT_METHODS + ('pruning', 'snip')),
    optimizer=st.sampled_from(sorted(OPTIMIZERS)),
    interval=st.integers(1, 3),
    fraction=st.floats(0.05, 1.0),
    schedule=st.sampled_from(schedules.DROP_FRACTION_SCHEDULES),
    num_steps=st.integers(1, 7),
    seed=st.integers(0, 1000),
)
@pytest.mark.slow
def test_sparse_training_invariants(
    shapes,
    sparsity,
    method_name,
    optimizer,
    interval,
    fraction,
    schedule,
    num_steps,
    seed,
):
  params = make_params(shapes, seed)
  sparsities = get_sparsities(params, sparsity, 'uniform')
  # TrainState.create refuses a layer that would keep no weight.
  assume(
      all(
          masks_lib.num_active_for(sparsities[name]['kernel'], p['kernel'].size)
          for name, p in params.items()
      )
  )
  method = make_method(method_name, interval, fraction, schedule, end=6)
  for old, new in run(
      method, OPTIMIZERS[optimizer](), params, sparsities, num_steps, seed
  ):
    for name in params:
      mask = np.asarray(new.masks[name]['kernel'])
      old_mask = np.asarray(old.masks[name]['kernel'])
      weights = np.asarray(new.params[name]['kernel'])
      # Inactive weights are exactly zero.
      assert (weights[~mask] == 0).all()
      # Newly grown weights start at zero.
      assert (weights[mask & ~old_mask] == 0).all()
      if method_name in CONSTANT_COUNT_METHODS:
        assert mask.sum() == old_mask.sum()
      if method_name == 'pruning':
        assert not (mask & ~old_mask).any()
    grown = jax.tree.map(lambda o, n: n & ~o, old.masks, new.masks)
    assert grown_state_is_zero(new, grown)


@pytest.mark.parametrize('method_name', ['set', 'snfs', 'rigl'])
def test_identical_seeds_give_identical_runs(method_name):
  params = make_params([(8, 9), (3, 3, 2, 4)], seed=0)
  sparsities = get_sparsities(params, 0.8, 'erk')
  method = make_method(method_name, 2, 0.5, 'cosine', end=8)

  def final(seed):
    *_, (_, last) = run(
        method, OPTIMIZERS['momentum'](), params, sparsities, 8, seed
    )
    return last

  a, b, c = final(1), final(1), final(2)
  for x, y in zip(jax.tree.leaves(a.masks), jax.tree.leaves(b.masks)):
    np.testing.assert_array_equal(x, y)
  for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
    np.testing.assert_array_equal(x, y)
  assert any(
      not np.array_equal(x, y)
      for x, y in zip(jax.tree.leaves(a.masks), jax.tree.leaves(c.masks))
  )


def test_masks_change_only_on_update_steps_and_stats_follow():
  params = make_params([(10, 10)], seed=0)
  sparsities = get_sparsities(params, 0.5, 'uniform')
  method = make_method('rigl', 3, 0.3, 'constant', end=7)
  changed = []
  for old, new in run(
      method, OPTIMIZERS['momentum'](), params, sparsities, 9, 0
  ):
    changed.append(
        not np.array_equal(
            old.masks['layer_0']['kernel'], new.masks['layer_0']['kernel']
        )
    )
  assert changed == [True, False, False, True, False, False, True, False, False]
  assert int(new.topology_stats.num_updates) == 3
  assert 0.5 < float(new.topology_stats.exploration_rate(new.masks)) <= 1.0


def test_learning_rate_follows_the_training_step_when_updates_skip_it():
  # RigL takes no optimizer step at its update steps 0 and 2. The rate is 1
  # before step 4 and 0 from step 4 on, so exactly steps 1 and 3 move the
  # weights. (A schedule on optax's update count would also move step 4.)
  schedule = optax.piecewise_constant_schedule(1.0, {4: 0.0})
  tx = transforms.scale_by_schedule_at_step(schedule)
  method = methods.rigl.RigL(
      update_schedule=schedules.UpdateSchedule(0, 3, 2),
      drop_fraction=schedules.DropFraction('constant', 0.01, 3),
  )
  params = {'w': jnp.ones((4, 5))}
  state = TrainState.create(
      params=params,
      tx=tx,
      method=method,
      sparsities={'w': 0.5},
      rng=jax.random.PRNGKey(0),
  )
  grads = {'w': jnp.ones((4, 5))}
  for _ in range(6):
    state = state.apply_gradients(grads=grads)
  active = np.asarray(state.masks['w'])
  np.testing.assert_array_equal(np.asarray(state.params['w'])[active], -1.0)


@pytest.mark.parametrize('method_name', ['set', 'snfs', 'rigl', 'pruning'])
def test_steps_of_fixed_kind_match_the_conditional_step(method_name):
  params = make_params([(8, 9), (3, 3, 2, 4)], seed=0)
  sparsities = get_sparsities(params, 0.8, 'erk')
  method = make_method(method_name, 2, 0.5, 'cosine', end=6)
  state = TrainState.create(
      params=params,
      tx=OPTIMIZERS['adam'](),
      method=method,
      sparsities=sparsities,
      rng=jax.random.PRNGKey(0),
  )
  conditional = jax.jit(lambda s, g: s.apply_gradients(grads=g))
  fixed = {
      kind: jax.jit(
          lambda s, g, kind=kind: s.apply_gradients(
              grads=g, topology_update=kind
          )
      )
      for kind in (False, True)
  }
  a = b = state
  for t in range(7):
    grads = jax.tree.map(
        lambda p, t=t: jax.random.normal(jax.random.PRNGKey(t), p.shape), params
    )
    a = conditional(a, grads)
    b = fixed[bool(method.is_update_step(t))](b, grads)
    for x, y in zip(jax.tree.leaves(a.masks), jax.tree.leaves(b.masks)):
      np.testing.assert_array_equal(x, y)
    for x, y in zip(
        jax.tree.leaves((a.params, a.opt_state)),
        jax.tree.leaves((b.params, b.opt_state)),
    ):
      np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
  assert int(a.topology_stats.num_updates) == sum(
      bool(method.is_update_step(t)) for t in range(7)
  )
