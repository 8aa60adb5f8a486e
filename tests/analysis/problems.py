"""Small problems with known solutions for the loss-landscape tests."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rigl_jax.models import batch_norm

# The ring loss: minima on the circle of centre (0, -RING_OFFSET) through
# (-1, 0) and (1, 0). The chord between these two minima crosses a barrier
# of height 1 at the origin, around which the upper arc bends at zero loss.
# The offset makes the origin's gradient point up, toward that arc.
RING_OFFSET = 0.5
RING_START = {'w': jnp.array([-1.0, 0.0])}
RING_END = {'w': jnp.array([1.0, 0.0])}


def ring_loss(params):
  x, y = params['w']
  return ((x**2 + (y + RING_OFFSET) ** 2) - (1 + RING_OFFSET**2)) ** 2


class MLP(nn.Module):
  """A two-layer tanh MLP: permuting its hidden units keeps its function."""

  hidden: int = 16

  @nn.compact
  def __call__(self, x):
    hidden = jnp.tanh(nn.Dense(self.hidden, name='hidden')(x))
    return nn.Dense(1, name='out')(hidden)


def permute_hidden(params, permutation):
  """The same function as ``params`` with its hidden units reordered."""
  hidden, out = params['hidden'], params['out']
  return {
      'hidden': {
          'kernel': hidden['kernel'][:, permutation],
          'bias': hidden['bias'][permutation],
      },
      'out': {'kernel': out['kernel'][permutation], 'bias': out['bias']},
  }


def teacher_problem(seed=0, num_inputs=4, num_examples=256, density=0.5):
  """A sparse teacher MLP and its permutation: two zero-loss solutions.

  Both regress the teacher's outputs exactly; the straight line between
  them averages unrelated hidden units, a barrier. Their masks differ, and
  their union is a proper subspace.

  Returns:
    (model, inputs, targets, (a, masks_a), (b, masks_b)).
  """
  rng = np.random.default_rng(seed)
  model = MLP()
  inputs = jnp.asarray(rng.standard_normal((num_examples, num_inputs)))
  params = model.init(jax.random.PRNGKey(seed), inputs[:1])['params']
  params = jax.tree.map(lambda p: 3 * p, params)  # Saturating units.
  masks = {
      layer: {
          'kernel': jnp.asarray(rng.random(p['kernel'].shape) < density),
          'bias': None,
      }
      for layer, p in params.items()
  }
  params = jax.tree.map(
      lambda p, m: p if m is None else p * m,
      params,
      masks,
      is_leaf=lambda x: x is None,
  )
  permutation = rng.permutation(model.hidden)
  other = permute_hidden(params, permutation)
  other_masks = {
      'hidden': {
          'kernel': masks['hidden']['kernel'][:, permutation],
          'bias': None,
      },
      'out': {'kernel': masks['out']['kernel'][permutation], 'bias': None},
  }
  targets = model.apply({'params': params}, inputs)
  return model, inputs, targets, (params, masks), (other, other_masks)


class BatchNormMLP(nn.Module):
  """Dense, BatchNorm (momentum 0.9), tanh, Dense, BatchNorm (momentum 0.5)."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.Dense(8)(x)
    x = jnp.tanh(batch_norm.batch_norm(train, name='bn1')(x))
    x = nn.Dense(3)(x)
    return nn.BatchNorm(
        use_running_average=not train, momentum=0.5, name='bn2'
    )(x)
