"""rigl_jax: sparse neural-network training in JAX (RigL and its baselines).

Packages: ``rigl_jax.sparse`` (the core, pure JAX), ``rigl_jax.models``,
``rigl_jax.data`` (input pipelines), ``rigl_jax.training`` (configs, build,
the loop, checkpoints, costs). The core's API is re-exported here.
"""

from rigl_jax.sparse import DISTRIBUTIONS
from rigl_jax.sparse import METHODS
from rigl_jax.sparse import TrainState
from rigl_jax.sparse import apply_masks
from rigl_jax.sparse import get_sparsities
from rigl_jax.sparse import mask_updates
from rigl_jax.sparse import methods
from rigl_jax.sparse import random_masks
from rigl_jax.sparse import schedules
from rigl_jax.sparse import sparse_optimizer

__version__ = '0.1.0'

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
