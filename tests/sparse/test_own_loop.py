"""The sparse core in a user's own optax and Flax loop."""

import flax.linen as nn
from flax.training import train_state as flax_train_state
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rigl_jax import TrainState
from rigl_jax import get_sparsities
from rigl_jax.sparse import methods
from rigl_jax.sparse import schedules
from rigl_jax.sparse import transforms


def rigl(interval=2, end=6):
  return methods.rigl.RigL(
      update_schedule=schedules.UpdateSchedule(0, end, interval),
      drop_fraction=schedules.DropFraction('cosine', 0.3, end),
  )


def train(tx, num_steps=7):
  params = {'w': jax.random.normal(jax.random.key(0), (8, 6))}
  state = TrainState.create(
      params=params,
      tx=tx,
      method=rigl(),
      sparsities={'w': 0.5},
      rng=jax.random.key(1),
  )
  step = jax.jit(lambda s, g: s.apply_gradients(grads=g))
  for t in range(num_steps):
    grads = {'w': jax.random.normal(jax.random.key(100 + t), (8, 6))}
    state = step(state, grads)
  return state


def counts(opt_state):
  return [
      int(c)
      for c in jax.tree.leaves(
          optax.tree_utils.tree_get_all_with_path(opt_state, 'count')
      )
      if getattr(c, 'shape', None) == ()
  ]


def test_a_users_optax_schedule_follows_the_training_step():
  # RigL skips the optimizer at steps 0, 2 and 4; the schedule still sees
  # the training step, so the user's sgd equals one on the training step.
  schedule = optax.cosine_decay_schedule(0.1, decay_steps=7)
  users = train(optax.sgd(schedule, momentum=0.9))
  on_step = train(
      optax.chain(
          optax.trace(0.9), transforms.scale_by_schedule_at_step(schedule)
      )
  )
  assert counts(users.opt_state) == [7]
  np.testing.assert_array_equal(users.params['w'], on_step.params['w'])


def test_adamw_with_a_schedule_counts_every_training_step():
  state = train(optax.adamw(optax.linear_schedule(1e-2, 0.0, 7)))
  assert counts(state.opt_state) and set(counts(state.opt_state)) == {7}


class Mlp(nn.Module):

  @nn.compact
  def __call__(self, x):
    return nn.Dense(3)(nn.relu(nn.Dense(16)(x)))


def flax_examples_train_step(state, batch):
  """A train step as the Flax examples write it, unchanged."""

  def loss_fn(params):
    logits = state.apply_fn({'params': params}, batch['image'])
    one_hot = jax.nn.one_hot(batch['label'], 3)
    return optax.softmax_cross_entropy(logits, one_hot).mean()

  loss, grads = jax.value_and_grad(loss_fn)(state.params)
  return state.apply_gradients(grads=grads), loss


def test_a_flax_examples_loop_switches_with_one_line():
  model = Mlp()
  x = jax.random.normal(jax.random.key(0), (32, 5))
  batch = {'image': x, 'label': (x[:, 0] > 0).astype(jnp.int32)}
  params = model.init(jax.random.key(1), x)['params']
  state = TrainState.create(  # was flax.training.train_state.TrainState
      apply_fn=model.apply,
      params=params,
      tx=optax.sgd(0.1, momentum=0.9),
      method=rigl(interval=3, end=30),
      sparsities=get_sparsities(params, 0.7, 'erk'),
      rng=jax.random.key(2),
  )
  assert isinstance(state, flax_train_state.TrainState)
  step = jax.jit(flax_examples_train_step)
  losses = []
  for _ in range(40):
    state, loss = step(state, batch)
    losses.append(float(loss))
  assert losses[-1] < losses[0]
  assert int(state.topology_stats.num_updates) == 10
  kernel = state.params['Dense_0']['kernel']
  assert bool(
      jnp.all(jnp.where(state.masks['Dense_0']['kernel'], True, kernel == 0))
  )
