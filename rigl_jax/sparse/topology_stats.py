"""How much a topology has moved: churn of the last update, exploration.

Exploration rate is the fraction of maskable weights that were ever active
since the start of training (Liu et al. 2021 call it in-time
over-parameterization). Which weights were ever active is kept bit-packed,
an eighth of a byte per weight.
"""

from flax import struct
import jax
import jax.numpy as jnp

from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import topology
from rigl_jax.sparse.tree_paths import PyTree


def _pack(mask: jax.Array) -> jax.Array:
  return jnp.packbits(mask.reshape(-1))


class TopologyStats(struct.PyTreeNode):
  """Running statistics of topology updates.

  Attributes:
    ever_active: bit-packed uint8 per masked leaf (None for dense leaves).
    last_churn: fraction of active connections the last update replaced.
    num_updates: topology updates so far.
  """

  ever_active: PyTree
  last_churn: jax.Array
  num_updates: jax.Array

  @classmethod
  def create(cls, masks: PyTree) -> 'TopologyStats':
    return cls(
        ever_active=masks_lib.map_masks(
            lambda m: None if m is None else _pack(m), masks
        ),
        last_churn=jnp.zeros((), jnp.float32),
        num_updates=jnp.zeros((), jnp.int32),
    )

  def record(self, old_masks: PyTree, new_masks: PyTree) -> 'TopologyStats':
    """The statistics after an update from ``old_masks`` to ``new_masks``."""
    ever_active = masks_lib.map_masks(
        lambda m, ever: None if m is None else ever | _pack(m),
        new_masks,
        self.ever_active,
    )
    return self.replace(
        ever_active=ever_active,
        last_churn=topology.churn(old_masks, new_masks).astype(jnp.float32),
        num_updates=self.num_updates + 1,
    )

  def exploration_rate(self, masks: PyTree) -> jax.Array:
    """Fraction of the masked weights that were ever active."""
    sizes = [m.size for m in jax.tree.leaves(masks)]
    if not sizes:
      return jnp.ones((), jnp.float32)
    ever = sum(
        jnp.sum(jax.lax.population_count(e), dtype=jnp.int32)
        for e in jax.tree.leaves(self.ever_active)
    )
    return ever / sum(sizes)
