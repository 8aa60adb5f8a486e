"""SNFS (Dettmers & Zettlemoyer 2019): grow by the momentum of dense gradients.

The growth score is |EMA of dense gradients| (momentum 0.9), updated every
step. With ``redistribute`` the number of grown connections is also moved
across layers in proportion to the mean momentum magnitude of each layer's
active weights (sparse momentum's redistribution); the RigL paper's SNFS
baseline keeps it off. Reads the ``mask_update`` block and its own ``snfs``
block. Training FLOPs: 2 f_S + f_D every step (dense gradients every step).
"""

import dataclasses

import jax
import jax.numpy as jnp

from rigl_jax.sparse import checks
from rigl_jax.sparse import flops
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import topology
from rigl_jax.sparse import tree_paths
from rigl_jax.sparse.methods import drop_and_grow


def allocate_proportionally(
    total: jax.Array, weights: jax.Array, capacity: jax.Array
) -> jax.Array:
  """Splits ``total`` into int32 shares proportional to ``weights``.

  No share exceeds its ``capacity``; what a full layer cannot take goes to
  the others. The shares sum to ``total`` whenever the capacities allow it.
  """
  num_layers = weights.shape[0]
  alloc = jnp.zeros(num_layers, jnp.int32)
  for _ in range(num_layers):  # Each round fills a layer or spends the rest.
    remaining = total - alloc.sum()
    is_open = alloc < capacity
    open_weights = jnp.where(is_open, weights, 0.0)
    share = jnp.where(
        open_weights.sum() > 0,
        open_weights / jnp.maximum(open_weights.sum(), 1e-30),
        is_open / jnp.maximum(is_open.sum(), 1),
    )
    alloc = jnp.minimum(
        capacity, alloc + jnp.floor(share * remaining).astype(jnp.int32)
    )
  # Rounding down leaves a few entries: give them to the heaviest open layers.
  order = jnp.argsort(
      -jnp.where(alloc < capacity, weights, -jnp.inf), stable=True
  )
  for j in range(num_layers):
    remaining = total - alloc.sum()
    layer = order[j]
    alloc = alloc.at[layer].add(
        jnp.clip(capacity[layer] - alloc[layer], 0, remaining)
    )
  return alloc


@dataclasses.dataclass(frozen=True)
class Snfs(drop_and_grow.DropAndGrowMethod):
  """Sparse Networks From Scratch: growth by |momentum of dense gradients|."""

  momentum: float = 0.9
  redistribute: bool = False

  name = 'snfs'
  display_name = 'SNFS'

  @classmethod
  def config_defaults(cls):
    return {
        **super().config_defaults(),
        'snfs': {'momentum': 0.9, 'redistribute': False},
    }

  @classmethod
  def from_config(cls, config):
    checks.require_in_range(
        'snfs.momentum', config.snfs.momentum, 0.0, 1.0, high_open=True
    )
    return cls(
        **cls.method_kwargs(config),
        momentum=config.snfs.momentum,
        redistribute=config.snfs.redistribute,
    )

  def train_flops(self, costs: flops.RunCosts) -> float:
    return costs.num_steps * flops.dense_gradient_step(
        costs.sparse_flops, costs.dense_flops
    )

  def init_state(self, params, masks, sparsities):
    del sparsities
    return {
        'grad_ema': masks_lib.map_masks(
            lambda m, p: None if m is None else jnp.zeros(p.shape, jnp.float32),
            masks,
            params,
        )
    }

  def observe_gradients(self, state, grads, masks):
    beta = self.momentum
    ema = masks_lib.map_masks(
        lambda m, e, g: None if m is None else beta * e + (1.0 - beta) * g,
        masks,
        state['grad_ema'],
        grads,
    )
    return {'grad_ema': ema}

  def grow_scores(self, rng, params, grads, masks, state):
    del rng, params, grads
    return masks_lib.map_masks(
        lambda m, e: None if m is None else jnp.abs(e), masks, state['grad_ema']
    )

  def update_masks(self, rng, step, params, grads, masks, state):
    # Under a mask structure each group keeps its count: no redistribution.
    if not self.redistribute or self.structure.is_structured:
      return super().update_masks(rng, step, params, grads, masks, state)
    fraction = self.drop_fraction(step)
    mask_leaves, treedef = jax.tree.flatten(masks, is_leaf=tree_paths.is_none)
    weights = treedef.flatten_up_to(self.drop_weights(rng, params, masks))
    emas = treedef.flatten_up_to(state['grad_ema'])
    layers = [i for i, m in enumerate(mask_leaves) if m is not None]
    if not layers:
      return masks
    seeds = treedef.flatten_up_to(masks_lib.tie_seeds(rng, masks))

    kept, swaps, mean_momentum, capacity = {}, [], [], []
    for i in layers:
      mask = mask_leaves[i]
      num_active = jnp.sum(mask, dtype=jnp.int32)
      k = drop_and_grow.num_to_swap(mask, fraction)
      kept[i] = topology.prune_to(mask, weights[i], num_active - k, seeds[i])
      swaps.append(k)
      mean_momentum.append(
          jnp.sum(jnp.where(mask, jnp.abs(emas[i]), 0.0))
          / jnp.maximum(num_active, 1)
      )
      capacity.append(mask.size - (num_active - k))
    regrow = allocate_proportionally(
        jnp.sum(jnp.stack(swaps)),
        jnp.stack(mean_momentum),
        jnp.stack(capacity).astype(jnp.int32),
    )

    new_leaves = list(mask_leaves)
    for j, i in enumerate(layers):
      grow_scores = jnp.where(kept[i], -jnp.inf, jnp.abs(emas[i]))
      new_leaves[i] = kept[i] | topology.top_k_mask(
          grow_scores, regrow[j], topology.other_seed(seeds[i])
      )
    return jax.tree.unflatten(treedef, new_leaves)


METHOD = Snfs
