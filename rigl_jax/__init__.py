"""rigl_jax: sparse neural-network training in JAX (RigL and its baselines).

The sparse core imported here is pure JAX: it does not import TensorFlow.
"""

from rigl_jax.distributions import DISTRIBUTIONS
from rigl_jax.distributions import get_sparsities
from rigl_jax.masks import apply_masks
from rigl_jax.masks import random_masks
from rigl_jax.methods import METHODS
from rigl_jax.train_state import TrainState
from rigl_jax.transforms import mask_updates
from rigl_jax.transforms import sparse_optimizer

__version__ = '0.1.0'

__all__ = [
    'DISTRIBUTIONS',
    'METHODS',
    'TrainState',
    'apply_masks',
    'get_sparsities',
    'mask_updates',
    'random_masks',
    'sparse_optimizer',
]
