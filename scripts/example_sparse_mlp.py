"""The sparse core in a few lines: RigL on a small MLP with synthetic data.

Fits a random two-layer teacher with a 90%-sparse ERK student and prints the
loss, the sparsity and how much of the network RigL has explored.

  python scripts/example_sparse_mlp.py
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import rigl_jax
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import methods
from rigl_jax.sparse import schedules


class MLP(nn.Module):

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Dense(256)(x))
    x = nn.relu(nn.Dense(256)(x))
    return nn.Dense(1)(x)


def main(num_steps: int = 2000, batch_size: int = 128) -> None:
  model = MLP()
  teacher_key, init_key, state_key = jax.random.split(jax.random.PRNGKey(0), 3)
  teacher = jax.random.normal(teacher_key, (32, 1)) / jnp.sqrt(32.0)
  params = model.init(init_key, jnp.zeros((1, 32)))['params']

  sparsities = rigl_jax.get_sparsities(params, 0.9, 'erk')
  method = methods.rigl.RigL(
      update_schedule=schedules.UpdateSchedule(0, 1500, interval=100),
      drop_fraction=schedules.DropFraction('cosine', 0.3, end_step=1500),
  )
  state = rigl_jax.TrainState.create(
      params=params,
      tx=optax.sgd(0.05, momentum=0.9),
      method=method,
      sparsities=sparsities,
      rng=state_key,
  )

  @jax.jit
  def train_step(state, x):
    y = jnp.sin(x @ teacher)
    loss_fn = lambda p: jnp.mean((model.apply({'params': p}, x) - y) ** 2)
    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(grads=grads), loss

  for step in range(num_steps):
    x = jax.random.normal(jax.random.PRNGKey(step), (batch_size, 32))
    state, loss = train_step(state, x)
    if step % 500 == 0 or step == num_steps - 1:
      print(
          f'step {step:5d}  loss {float(loss):.4f}  sparsity '
          f'{masks_lib.overall_sparsity(state.masks):.3f}  explored '
          f'{float(state.topology_stats.exploration_rate(state.masks)):.3f}'
      )


if __name__ == '__main__':
  main()
