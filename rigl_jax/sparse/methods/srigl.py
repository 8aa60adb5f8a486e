"""SRigL (Lasby et al., "Dynamic Sparse Training with Structured Sparsity",
ICLR 2024; code: github.com/calgaryml/condensed-sparsity,
``src/rigl_torch/rigl_constant_fan.py``): RigL under constant fan-in, with
neuron ablation.

At an update step with drop fraction f, in each sparse layer of n active
weights (read from the authors' ``_rigl_step``):

1. Saliency: the n - floor(f n) largest |w| of the layer and the floor(f n)
   largest |gradient| are salient. A unit (output neuron) with fewer than
   ``max(1, floor(gamma_sal * k0))`` salient weights is ablated, k0 being
   the layer's constant fan-in before any ablation. So that enough units
   remain to hold the layer's budget B at dense fan-in F, the threshold is
   lowered to the salient count of the unit ranked B // F (0-based, by
   count, descending) when that count is below it.
2. The ablated units' budget goes to the others: the fan-in becomes
   B // (units left).
3. Drop: the n - floor(f n) largest |w| of the units left are kept; a unit
   keeping more than the fan-in keeps its largest. Grow: every unit left
   grows, by |gradient| among its other entries, up to the fan-in.

Ablated units stay at zero for the rest of training (here a unit with no
active weight is ablated; in the authors' code the set is recomputed at
every update). The output layer's units (the classes) are never ablated,
as there: ``srigl.no_ablation`` lists regexes of the layers kept whole,
by default the model's output layer.

Values the paper leaves open, and where they come from here:
- gamma_sal = 0.3: ``min_salient_weights_per_neuron: 0.3`` of the authors'
  ``configs/config.yaml``, measured against the sparse fan-in
  (``use_sparse_const_fan_in_for_ablation: True``).
- the initial constant fan-in is round((1 - s) * F) per unit (the
  ``fan_in`` mask structure); the authors' code floors the layer's budget
  divided by its units. Ties are broken by the run's seed, not by index.
- FLOPs: RigL's accounting (a dense gradient every ΔT steps); ablated
  units count as zero weights of the layer. Their inputs in the next layer
  are still counted; removing them is a matter for export.
"""

import dataclasses
import re
from typing import Any, Optional

import jax
import jax.numpy as jnp

from rigl_jax.sparse import checks
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import structure as structure_lib
from rigl_jax.sparse import topology
from rigl_jax.sparse import tree_paths
from rigl_jax.sparse.methods import base
from rigl_jax.sparse.methods import drop_and_grow
from rigl_jax.sparse.methods import rigl

FAN_IN = structure_lib.MaskStructure('fan_in')


@dataclasses.dataclass(frozen=True)
class SRigL(rigl.RigL):
  """RigL with constant fan-in and neuron ablation.

  Attributes:
    gamma_sal: the fraction of the sparse fan-in a unit must keep salient.
    no_ablation: regexes of layer paths whose units are never ablated; None
      takes the model's output layer (``for_model``).
  """

  gamma_sal: float = 0.3
  no_ablation: Optional[tuple[str, ...]] = None

  name = 'srigl'
  display_name = 'SRigL'
  structure: structure_lib.MaskStructure = dataclasses.field(
      default=FAN_IN, kw_only=True
  )

  def __post_init__(self):
    checks.require(
        0.0 <= self.gamma_sal <= 1.0,
        'srigl.gamma_sal',
        f'must be in [0, 1], got {self.gamma_sal!r}',
    )

  @classmethod
  def config_defaults(cls):
    return {
        **super().config_defaults(),
        'srigl': {'gamma_sal': 0.3, 'no_ablation': base.Unset(tuple)},
    }

  @classmethod
  def from_config(cls, config: Any) -> 'SRigL':
    no_ablation = config.srigl.no_ablation
    return cls(
        **cls.method_kwargs(config),
        gamma_sal=config.srigl.gamma_sal,
        no_ablation=None if no_ablation is None else tuple(no_ablation),
    )

  def with_structure(self, structure: structure_lib.MaskStructure) -> 'SRigL':
    # Constant fan-in is SRigL's own structure; 'unstructured' means it.
    if structure.kind == 'unstructured':
      structure = FAN_IN
    return dataclasses.replace(self, structure=structure)

  def structure_problem(self):
    if self.structure.kind != 'fan_in':
      return (
          f'srigl trains constant fan-in masks, not {self.structure.kind}; '
          "set mask_structure.kind='fan_in' (or leave it 'unstructured')"
      )
    return None

  def for_model(self, output_layer: str) -> 'SRigL':
    if self.no_ablation is not None or not output_layer:
      return self
    return dataclasses.replace(
        self, no_ablation=(f'^{re.escape(output_layer)}$',)
    )

  def init_state(self, params, masks, sparsities):
    del masks
    # B, the layer's active weights at the start: ablation redistributes it.
    budget = lambda s, p: (
        None
        if s is None
        else jnp.asarray(self.structure.num_active(s, p.shape), jnp.int32)
    )
    return {'budget': masks_lib.map_masks(budget, sparsities, params)}

  def _ablates(self, path: str) -> bool:
    return not any(re.search(p, path) for p in self.no_ablation or ())

  def update_masks(self, rng, step, params, grads, masks, state):
    fraction = self.drop_fraction(step)
    leaves, treedef = jax.tree.flatten(masks, is_leaf=tree_paths.is_none)
    paths = [
        tree_paths.key_path_to_str(path)
        for path, _ in jax.tree_util.tree_flatten_with_path(
            masks, is_leaf=tree_paths.is_none
        )[0]
    ]
    weights = treedef.flatten_up_to(self.drop_weights(rng, params, masks))
    gradients = treedef.flatten_up_to(grads)
    budgets = treedef.flatten_up_to(state['budget'])
    seeds = treedef.flatten_up_to(masks_lib.tie_seeds(rng, masks))
    new = [
        None
        if mask is None
        else self._update_layer(
            mask, w, g, budget, fraction, seed, self._ablates(path)
        )
        for mask, w, g, budget, seed, path in zip(
            leaves, weights, gradients, budgets, seeds, paths
        )
    ]
    return jax.tree.unflatten(treedef, new)

  def _ablated_units(self, units, drop, grow, n_keep, n_prune, budget, seed):
    """Units to ablate from now on (those already empty included)."""
    num_units, dense_fan_in = units.shape
    salient = topology.top_k_mask(drop, n_keep, seed) | topology.top_k_mask(
        grow, n_prune, topology.other_seed(seed)
    )
    counts = jnp.sum(salient, axis=1, dtype=jnp.int32)
    threshold = jnp.maximum(
        1, jnp.floor(self.gamma_sal * (budget // num_units)).astype(jnp.int32)
    )
    rank = jnp.minimum(budget // dense_fan_in, num_units - 1)
    at_rank = -jnp.sort(-counts)[rank]
    threshold = jnp.minimum(threshold, at_rank)
    return (counts < threshold) | ~jnp.any(units, axis=1)

  def _update_layer(
      self, mask, weights, grads, budget, fraction, seed, ablates
  ):
    structure = self.structure
    units = structure.to_groups(mask)  # [units, dense fan-in]
    num_units, dense_fan_in = units.shape
    n_ones = jnp.sum(mask, dtype=jnp.int32)
    n_prune = drop_and_grow.num_to_swap(mask, fraction)
    n_keep = n_ones - n_prune
    drop = jnp.where(units, jnp.abs(structure.to_groups(weights)), -jnp.inf)
    grow = jnp.abs(structure.to_groups(grads))
    if ablates:
      ablated = self._ablated_units(
          units, drop, grow, n_keep, n_prune, budget, seed
      )
    else:
      ablated = jnp.zeros(num_units, jnp.bool_)
    left = jnp.maximum(num_units - jnp.sum(ablated, dtype=jnp.int32), 1)
    fan_in = jnp.minimum(budget // left, dense_fan_in)
    drop = jnp.where(ablated[:, None], -jnp.inf, drop)
    kept = topology.top_k_mask(drop, n_keep, seed)

    def per_unit(kept_u, drop_u, grow_u, ablated_u, seed_u):
      keep = jnp.minimum(jnp.sum(kept_u, dtype=jnp.int32), fan_in)
      kept_u = topology.top_k_mask(
          jnp.where(kept_u, drop_u, -jnp.inf), keep, seed_u
      )
      grown = topology.top_k_mask(
          jnp.where(kept_u, -jnp.inf, grow_u),
          fan_in - keep,
          topology.other_seed(seed_u),
      )
      return (kept_u | grown) & ~ablated_u

    new_units = jax.vmap(per_unit)(
        kept, drop, grow, ablated, topology.spread_seed(seed, num_units)
    )
    return structure.from_groups(new_units, mask.shape)


METHOD = SRigL
