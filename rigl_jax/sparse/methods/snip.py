"""SNIP (Lee et al. 2019): prune once at step 0 by connection sensitivity.

Training starts dense. At step 0 the score |g ⊙ w| on the first batch
selects each layer's budget from the distribution (or, with
``global_ranking``, the top entries over all sparse layers together, as in
the original SNIP). No optimizer step is taken at step 0; the masks then
stay fixed. Reads the ``snip`` block. Training FLOPs: 3 f_S every step
(the one dense step is negligible).
"""

import dataclasses

import jax
import jax.numpy as jnp

from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import topology
from rigl_jax.sparse import tree_paths
from rigl_jax.sparse.methods import base


@dataclasses.dataclass(frozen=True)
class Snip(base.SparseMethod):
  """Single-shot pruning by connection sensitivity."""

  global_ranking: bool = False

  name = 'snip'
  display_name = 'SNIP'
  changes_topology = True

  @classmethod
  def config_defaults(cls):
    return {'snip': {'global_ranking': False}}

  @classmethod
  def from_config(cls, config):
    return cls(global_ranking=config.snip.global_ranking)

  @property
  def skip_optimizer_step(self):
    return True

  def init_masks(self, rng, params, sparsities):
    del rng
    return masks_lib.full_masks(params, sparsities)

  def init_state(self, params, masks, sparsities):
    del masks
    return {
        'num_active': masks_lib.map_masks(
            lambda s, p: None
            if s is None
            else jnp.asarray(
                self.structure.active_per_group(s, p.shape), jnp.int32
            ),
            sparsities,
            params,
        )
    }

  def structure_problem(self):
    if self.global_ranking and self.structure.is_structured:
      return (
          'snip.global_ranking ranks every layer together, which no mask '
          'structure allows; set snip.global_ranking=False'
      )
    return None

  def is_update_step(self, step):
    return step == 0

  def update_masks(self, rng, step, params, grads, masks, state):
    del step
    sensitivity = masks_lib.map_masks(
        lambda m, w, g: None if m is None else jnp.abs(w * g),
        masks,
        params,
        grads,
    )
    if not self.global_ranking:
      return masks_lib.map_masks(
          lambda m, s, k, seed: None
          if m is None
          else self.structure.apply(
              lambda scores, group_seed: topology.top_k_mask(
                  scores, k, group_seed
              ),
              s,
              tie_seed=seed,
          ),
          masks,
          sensitivity,
          state['num_active'],
          masks_lib.tie_seeds(rng, masks),
      )
    scores = jax.tree.leaves(sensitivity)
    budget = sum(jax.tree.leaves(state['num_active']))
    keep = topology.top_k_mask(
        jnp.concatenate([s.reshape(-1) for s in scores]),
        budget,
        jax.random.bits(rng, (), jnp.uint32),
    )
    leaves, treedef = jax.tree.flatten(sensitivity, is_leaf=tree_paths.is_none)
    new_leaves, offset = [], 0
    for leaf in leaves:
      if leaf is None:
        new_leaves.append(None)
        continue
      new_leaves.append(keep[offset : offset + leaf.size].reshape(leaf.shape))
      offset += leaf.size
    return jax.tree.unflatten(treedef, new_leaves)


METHOD = Snip
