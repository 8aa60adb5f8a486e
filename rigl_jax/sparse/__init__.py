"""The sparse core: masks, distributions, schedules, methods, optax transforms.

Pure JAX, optax and flax: it imports nothing of the runner (configs, data,
training loop) and no TensorFlow, so it drops into any optax/Flax loop.

  sparsities = sparse.get_sparsities(params, 0.9, 'erk')
  state = sparse.TrainState.create(params=params, tx=optax.sgd(0.1),
                                   method=method, sparsities=sparsities,
                                   rng=rng)
  state = state.apply_gradients(grads=grads)  # optimizer step or mask update
"""

from rigl_jax.sparse import methods
from rigl_jax.sparse import schedules
from rigl_jax.sparse.distributions import DISTRIBUTIONS
from rigl_jax.sparse.distributions import get_sparsities
from rigl_jax.sparse.masks import apply_masks
from rigl_jax.sparse.masks import random_masks
from rigl_jax.sparse.methods import METHODS
from rigl_jax.sparse.train_state import TrainState
from rigl_jax.sparse.transforms import mask_updates
from rigl_jax.sparse.transforms import sparse_optimizer

__all__ = [
    'DISTRIBUTIONS',
    'METHODS',
    'TrainState',
    'apply_masks',
    'get_sparsities',
    'mask_updates',
    'methods',
    'random_masks',
    'schedules',
    'sparse_optimizer',
]
