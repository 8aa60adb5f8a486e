"""Mask pytrees: one boolean array per sparsified kernel, ``None`` elsewhere.

Masks have the structure of the params. Inactive weights are kept at exactly
zero in the params themselves, so the forward pass needs no masking and the
gradient of the loss w.r.t. the params is the dense gradient RigL grows by.
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from rigl_jax.sparse import structure as structure_lib
from rigl_jax.sparse import topology
from rigl_jax.sparse import tree_paths
from rigl_jax.sparse.tree_paths import PyTree


def map_masks(fn: Callable[..., Any], masks: PyTree, *trees: PyTree) -> PyTree:
  """Maps ``fn(mask, *leaves)`` over masks and trees; ``mask`` may be None."""
  return jax.tree.map(fn, masks, *trees, is_leaf=tree_paths.is_none)


# The number of active entries a layer of ``size`` has at ``sparsity``.
num_active_for = structure_lib.num_active_for


def random_scores(rng: jax.Array, template: PyTree, params: PyTree) -> PyTree:
  """Uniform [0, 1) scores shaped like ``params`` where ``template`` is not None.

  One draw covers every selected leaf: a draw per leaf would compile one
  random-bit generator per layer, which dominates compile time on CPU.
  """
  leaves, treedef = jax.tree.flatten(template, is_leaf=tree_paths.is_none)
  shapes = [p.shape for p in treedef.flatten_up_to(params)]
  selected = [shape for leaf, shape in zip(leaves, shapes) if leaf is not None]
  sizes = [int(np.prod(shape)) for shape in selected]
  flat = jax.random.uniform(rng, (sum(sizes),))
  parts = iter(jnp.split(flat, np.cumsum(sizes)[:-1]) if sizes else [])
  scores = [
      None if leaf is None else next(parts).reshape(shape)
      for leaf, shape in zip(leaves, shapes)
  ]
  return jax.tree.unflatten(treedef, scores)


def tie_seeds(rng: jax.Array, template: PyTree) -> PyTree:
  """A uint32 seed per leaf where ``template`` is not None (one draw)."""
  leaves, treedef = jax.tree.flatten(template, is_leaf=tree_paths.is_none)
  seeds = iter(jax.random.bits(rng, (max(1, len(leaves)),), jnp.uint32))
  return jax.tree.unflatten(
      treedef, [None if leaf is None else next(seeds) for leaf in leaves]
  )


def random_masks(
    rng: jax.Array,
    params: PyTree,
    sparsities: PyTree,
    structure: structure_lib.MaskStructure = structure_lib.UNSTRUCTURED,
) -> PyTree:
  """Uniformly random masks with ``round((1 - s) * N)`` active entries.

  Args:
    rng: a PRNG key; the same key gives the same masks.
    params: pytree of arrays or ``jax.ShapeDtypeStruct``.
    sparsities: the output of ``get_sparsities`` for ``params``.
    structure: the masks' structure; with one, each group gets its own
      share of active entries (``MaskStructure.active_per_group``).

  Returns:
    A pytree with a bool mask for each leaf with a float sparsity and None
    for each leaf whose sparsity is None.
  """
  if structure.is_structured:
    seeds = tie_seeds(jax.random.fold_in(rng, 1), sparsities)
    return map_masks(
        lambda s, scores, seed: None
        if s is None
        else structure.random_mask(scores, s, seed),
        sparsities,
        random_scores(rng, sparsities, params),
        seeds,
    )
  return map_masks(
      lambda s, scores: None
      if s is None
      else topology.top_k_mask(scores, num_active_for(s, scores.size)),
      sparsities,
      random_scores(rng, sparsities, params),
  )


def full_masks(params: PyTree, sparsities: PyTree) -> PyTree:
  """All-active masks for the sparsified leaves (methods that start dense)."""
  return map_masks(
      lambda s, p: None if s is None else jnp.ones(p.shape, jnp.bool_),
      sparsities,
      params,
  )


def apply_masks(params: PyTree, masks: PyTree) -> PyTree:
  """Sets the inactive weights of ``params`` to zero."""
  return map_masks(
      lambda m, p: p if m is None else jnp.where(m, p, jnp.zeros_like(p)),
      masks,
      params,
  )


def layer_sparsities(masks: PyTree) -> dict[str, float]:
  """Achieved sparsity of each masked layer, keyed by its path (host side)."""
  result = {}
  for path, mask in tree_paths.named_leaves(masks):
    mask = np.asarray(mask)
    result[path] = 1.0 - float(mask.sum()) / mask.size
  return result


def overall_sparsity(masks: PyTree) -> float:
  """Fraction of inactive weights over all masked leaves (host side)."""
  total = active = 0
  for mask in jax.tree.leaves(masks):
    total += mask.size
    active += int(np.asarray(mask).sum())
  return 1.0 - active / total if total else 0.0


def channel_sparsities(masks: PyTree) -> dict[str, Any]:
  """Share of output channels (a kernel's last axis) with no active weight.

  {'overall': over every masked layer's channels, 'layers': {path: share}}
  (host side): the units an export can cut away.
  """
  layers, total, empty = {}, 0, 0
  for path, mask in tree_paths.named_leaves(masks):
    mask = np.asarray(mask)
    live = mask.reshape(-1, mask.shape[-1]).any(axis=0)
    layers[path] = 1.0 - float(live.sum()) / live.size
    total += live.size
    empty += int(live.size - live.sum())
  return {'overall': empty / total if total else 0.0, 'layers': layers}


def num_nonzero_params(params: PyTree, sparsities: PyTree) -> int:
  """Weights a model keeps at ``sparsities``; dense leaves count in full."""
  leaves, treedef = jax.tree.flatten(sparsities, is_leaf=tree_paths.is_none)
  sizes = [int(np.prod(p.shape)) for p in treedef.flatten_up_to(params)]
  return sum(
      size if s is None else num_active_for(s, size)
      for s, size in zip(leaves, sizes)
  )


# Bits of one stored weight (float32), as the RigL paper counts model size.
BITS_PER_WEIGHT = 32


def size_in_bits(params: PyTree, sparsities: PyTree) -> int:
  """Storage of a model at ``sparsities``, as the RigL paper counts it.

  32 bits per nonzero weight and one mask bit per entry of every sparse
  leaf (sparsity > 0): the size its Small-Dense baselines match.
  """
  leaves, treedef = jax.tree.flatten(sparsities, is_leaf=tree_paths.is_none)
  sizes = [int(np.prod(p.shape)) for p in treedef.flatten_up_to(params)]
  mask_bits = sum(
      size for s, size in zip(leaves, sizes) if s is not None and s > 0
  )
  return BITS_PER_WEIGHT * num_nonzero_params(params, sparsities) + mask_bits


def num_params(params: PyTree) -> int:
  """The number of entries of all leaves."""
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def num_active_params(params: PyTree, masks: PyTree) -> int:
  """Active weights of masked leaves plus every entry of dense leaves."""
  leaves, treedef = jax.tree.flatten(masks, is_leaf=tree_paths.is_none)
  return sum(
      int(np.prod(p.shape)) if m is None else int(np.count_nonzero(m))
      for m, p in zip(leaves, treedef.flatten_up_to(params))
  )
