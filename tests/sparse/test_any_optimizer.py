"""RigL trains past two mask updates under optax optimizers whose state holds
factored statistics, MaskedNodes, lists or wrappers."""

import jax
import jax.numpy as jnp
import optax
import pytest

import rigl_jax
from rigl_jax.sparse import checks
from rigl_jax.sparse import methods
from rigl_jax.sparse import schedules


def _params():
  k1, k2 = jax.random.split(jax.random.key(0))
  return {
      'a': {'kernel': jax.random.normal(k1, (16, 32)), 'bias': jnp.zeros(32)},
      'b': {'kernel': jax.random.normal(k2, (32, 4)), 'bias': jnp.zeros(4)},
  }


def _loss(p, x, y):
  h = jax.nn.relu(x @ p['a']['kernel'] + p['a']['bias'])
  logits = h @ p['b']['kernel'] + p['b']['bias']
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _labels(p):
  return {
      'a': jax.tree.map(lambda _: 'x', p['a']),
      'b': jax.tree.map(lambda _: 'y', p['b']),
  }


OPTIMIZERS = {
    'adafactor': lambda: optax.adafactor(1e-2),
    'multi_transform': lambda: optax.multi_transform(
        {'x': optax.adam(1e-2), 'y': optax.sgd(1e-2)}, _labels
    ),
    'MultiSteps': lambda: optax.MultiSteps(optax.adam(1e-2), 2),
    'inject_hyperparams': lambda: optax.inject_hyperparams(optax.adam)(
        learning_rate=1e-2
    ),
    'chain': lambda: optax.chain(
        optax.clip_by_global_norm(1.0), optax.adam(1e-2)
    ),
    'schedule_free': lambda: optax.contrib.schedule_free_adamw(1e-2),
    'apply_if_finite': lambda: optax.apply_if_finite(optax.adam(1e-2), 3),
    'masked': lambda: optax.masked(
        optax.adam(1e-2), jax.tree.map(lambda x: x.ndim == 2, _params())
    ),
    'sm3': lambda: optax.sm3(1e-2),
}


@pytest.mark.parametrize('name', sorted(OPTIMIZERS))
def test_rigl_keeps_density_and_moves_masks(name):
  params = _params()
  sparsities = rigl_jax.get_sparsities(params, 0.8, 'uniform')
  state = rigl_jax.TrainState.create(
      params=params,
      tx=OPTIMIZERS[name](),
      method=methods.rigl.RigL(
          update_schedule=schedules.UpdateSchedule(0, end_step=12, interval=5),
          drop_fraction=schedules.DropFraction('constant', 0.3, end_step=12),
      ),
      sparsities=sparsities,
      rng=jax.random.key(1),
  )
  first = state.masks
  step = jax.jit(
      lambda s, x, y: s.apply_gradients(grads=jax.grad(_loss)(s.params, x, y))
  )
  for i in range(12):  # Updates at steps 0, 5 and 10.
    x = jax.random.normal(jax.random.key(10 + i), (8, 16))
    state = step(state, x, jnp.arange(8) % 4)
  for before, after in zip(
      jax.tree.leaves(first), jax.tree.leaves(state.masks)
  ):
    assert int(before.sum()) == int(after.sum())
  assert any(
      bool((before != after).any())
      for before, after in zip(
          jax.tree.leaves(first), jax.tree.leaves(state.masks)
      )
  )
  for leaf in jax.tree.leaves(state.params):
    assert bool(jnp.isfinite(leaf).all())


REFUSED = {
    'lookahead': lambda: optax.lookahead(optax.adam(1e-2), 5, 0.5),
    'lbfgs': optax.lbfgs,
    'polyak_sgd': optax.polyak_sgd,
    'reduce_on_plateau': lambda: optax.chain(
        optax.adam(1e-2), optax.contrib.reduce_on_plateau()
    ),
}


@pytest.mark.parametrize('name', sorted(REFUSED))
def test_an_optimizer_the_step_cannot_drive_is_refused_at_create(name):
  params = _params()
  with pytest.raises(
      checks.InvalidArgument, match='cannot train a sparse'
  ) as e:
    rigl_jax.TrainState.create(
        params=params,
        tx=REFUSED[name](),
        method=methods.static.Static(),
        sparsities=rigl_jax.get_sparsities(params, 0.8, 'uniform'),
        rng=jax.random.key(1),
    )
  assert e.value.name == 'tx'
