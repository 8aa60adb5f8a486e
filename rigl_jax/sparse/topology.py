"""Jittable primitives that change a sparse topology: select, drop, grow.

All selections rank by score with ties broken towards the lower flat index,
so the same inputs always give the same mask. Counts may be
traced integers: the drop fraction and pruning targets depend on the step.
"""

from typing import Any

import jax
import jax.numpy as jnp
import optax

from rigl_jax.sparse import tree_paths
from rigl_jax.sparse.tree_paths import PyTree


def _order_preserving_bits(scores: jax.Array) -> jax.Array:
  """uint32 keys that order like the float32 ``scores`` (-inf lowest)."""
  bits = jax.lax.bitcast_convert_type(scores.astype(jnp.float32), jnp.int32)
  # Negative floats order backwards as integers: flip their magnitude bits.
  bits = jnp.where(bits < 0, bits ^ jnp.int32(0x7FFFFFFF), bits)
  return jax.lax.bitcast_convert_type(bits, jnp.uint32) ^ jnp.uint32(0x80000000)


def _kth_largest(keys: jax.Array, k: Any) -> jax.Array:
  """The largest key T with at least k keys >= T (radix select, MSB first)."""

  def try_bit(i, threshold):
    candidate = threshold | (jnp.uint32(1) << (31 - i).astype(jnp.uint32))
    count = jnp.sum(keys >= candidate, dtype=jnp.int32)
    return jnp.where(count >= k, candidate, threshold)

  return jax.lax.fori_loop(0, 32, try_bit, jnp.uint32(0))


def top_k_mask(scores: jax.Array, k: Any) -> jax.Array:
  """A bool mask of ``scores``' shape, True at its ``k`` largest entries.

  Exact and without a sort: 32 counting passes find the k-th largest
  score, then ties at it are taken in flat-index order.
  """
  keys = _order_preserving_bits(scores.reshape(-1))
  k = jnp.clip(jnp.asarray(k, jnp.int32), 0, keys.size)
  threshold = _kth_largest(keys, k)
  above = keys > threshold
  ties = keys == threshold
  needed = k - jnp.sum(above, dtype=jnp.int32)
  # Usually every tie is taken (a unique k-th score); the running count
  # that picks the first ones costs as much as the search on XLA:CPU.
  take_tie = jax.lax.cond(
      needed >= jnp.sum(ties, dtype=jnp.int32),
      lambda: ties,
      lambda: ties & (jnp.cumsum(ties, dtype=jnp.int32) <= needed),
  )
  return (above | take_tie).reshape(scores.shape)


def drop_and_grow(
    mask: jax.Array, weights: jax.Array, grow_scores: jax.Array, num_swap: Any
) -> jax.Array:
  """Drops the ``num_swap`` smallest-|w| active entries and grows as many.

  Growth is among the entries not kept, so an entry may be dropped and grown
  back in the same update. The number of active entries does not change.

  Args:
    mask: bool array, the current topology of one layer.
    weights: the layer's weights (inactive entries are zero).
    grow_scores: larger means grown first (e.g. |gradient|, random).
    num_swap: how many connections to replace; at most the active count.

  Returns:
    The new bool mask.
  """
  num_active = jnp.sum(mask, dtype=jnp.int32)
  num_swap = jnp.minimum(num_swap, num_active)
  drop_scores = jnp.where(mask, jnp.abs(weights), -jnp.inf)
  kept = top_k_mask(drop_scores, num_active - num_swap)
  grown = top_k_mask(jnp.where(kept, -jnp.inf, grow_scores), num_swap)
  return kept | grown


def prune_to(mask: jax.Array, weights: jax.Array, num_keep: Any) -> jax.Array:
  """Keeps the ``num_keep`` largest-|w| active entries; never grows."""
  num_keep = jnp.minimum(num_keep, jnp.sum(mask, dtype=jnp.int32))
  return top_k_mask(jnp.where(mask, jnp.abs(weights), -jnp.inf), num_keep)


def grown_entries(old_masks: PyTree, new_masks: PyTree) -> PyTree:
  """Entries active in ``new_masks`` but not in ``old_masks`` (None: dense)."""
  return jax.tree.map(
      lambda old, new: None if new is None else new & ~old,
      old_masks,
      new_masks,
      is_leaf=tree_paths.is_none,
  )


def zero_inactive(
    tx: optax.GradientTransformation,
    params: PyTree,
    opt_state: optax.OptState,
    masks: PyTree,
) -> tuple[PyTree, optax.OptState]:
  """Zeroes params and every param-shaped optimizer leaf where masks are off.

  Applied after every step with the step's new masks, it zeroes dropped
  weights, and it keeps the optimizer state of inactive entries at zero, so
  a grown entry starts with zero weight and zero state (momentum, Adam
  moments, ...) whatever the optimizer. An entry active before and after an
  update, even one dropped and grown back in it, keeps both.
  """
  params = jax.tree.map(
      lambda m, p: p if m is None else jnp.where(m, p, jnp.zeros_like(p)),
      masks,
      params,
      is_leaf=tree_paths.is_none,
  )
  # tree_map_params needs a leaf at every param position: False marks dense.
  masks_or_false = jax.tree.map(
      lambda m: False if m is None else m, masks, is_leaf=tree_paths.is_none
  )

  def zero(state_leaf, mask):
    if mask is False:
      return state_leaf
    return jnp.where(mask, state_leaf, jnp.zeros_like(state_leaf))

  opt_state = optax.tree_utils.tree_map_params(
      tx, zero, opt_state, masks_or_false
  )
  return params, opt_state


def churn(old_masks: PyTree, new_masks: PyTree) -> jax.Array:
  """Fraction of the previously active connections that were replaced."""
  grown = jax.tree.leaves(grown_entries(old_masks, new_masks))
  if not grown:
    return jnp.zeros((), jnp.float32)
  num_grown = sum(jnp.sum(g, dtype=jnp.int32) for g in grown)
  num_old = sum(jnp.sum(m, dtype=jnp.int32) for m in jax.tree.leaves(old_masks))
  return num_grown / jnp.maximum(num_old, 1)
