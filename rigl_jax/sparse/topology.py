"""Jittable primitives that change a sparse topology: select, drop, grow.

All selections rank by score. Ties at the last place taken are broken at
random given a key (seeded, so a run stays a function of its seed), or
towards the lower flat index without one. Ties do happen: an input pixel
that is always zero gives exactly zero gradient to every weight it feeds,
and by index order RigL would always grow those of the top image rows
first. Counts may be traced integers: the drop fraction and pruning targets
depend on the step.
"""

from typing import Any, Optional

import jax
import jax.numpy as jnp
import optax

from rigl_jax.sparse import opt_statistics
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


def _first_in_order(candidates: jax.Array, count: Any) -> jax.Array:
  """The first ``count`` True entries of the flat bool ``candidates``."""
  return candidates & (jnp.cumsum(candidates, dtype=jnp.int32) <= count)


def _shuffled_ranks(seed: jax.Array, size: int) -> jax.Array:
  """Distinct uint32 keys for the flat indices, in a seed-dependent order.

  A bijective integer hash (MurmurHash3's finalizer) of the index: no two
  indices share a key, and it compiles to a few elementwise operations per
  layer where a random-bit generator would add a function per layer.
  """
  x = jnp.arange(size, dtype=jnp.uint32) * jnp.uint32(0x9E3779B9)
  x = x + jnp.asarray(seed, jnp.uint32)
  x = x ^ (x >> 16)
  x = x * jnp.uint32(0x85EBCA6B)
  x = x ^ (x >> 13)
  x = x * jnp.uint32(0xC2B2AE35)
  return x ^ (x >> 16)


def _shuffled_among(
    seed: jax.Array, candidates: jax.Array, count: Any
) -> jax.Array:
  """``count`` of the flat bool ``candidates``, in the order ``seed`` gives."""
  keys = _shuffled_ranks(seed, candidates.size)
  # The others get key 0; a candidate whose key is 0 ranks with them, and
  # the first in index order among those fill any place left.
  keys = jnp.where(candidates, keys, 0)
  threshold = _kth_largest(keys, count)
  above = keys > threshold
  at = (keys == threshold) & candidates
  return above | _first_in_order(at, count - jnp.sum(above, dtype=jnp.int32))


def other_seed(tie_seed: jax.Array) -> jax.Array:
  """A seed whose tie order is independent of ``tie_seed``'s."""
  return jnp.asarray(tie_seed, jnp.uint32) ^ jnp.uint32(0x5BD1E995)


def spread_seed(tie_seed: jax.Array, count: int) -> jax.Array:
  """``count`` distinct uint32 seeds derived from one (a seed per group)."""
  return _shuffled_ranks(jnp.asarray(tie_seed, jnp.uint32), count)


def top_k_mask(
    scores: jax.Array, k: Any, tie_seed: Optional[jax.Array] = None
) -> jax.Array:
  """A bool mask of ``scores``' shape, True at its ``k`` largest entries.

  Exact and without a sort: 32 counting passes find the k-th largest
  score. When more entries tie at it than places are left, those taken are
  chosen in a pseudo-random order given by the uint32 ``tie_seed``, or in
  flat-index order without one.
  """
  keys = _order_preserving_bits(scores.reshape(-1))
  k = jnp.clip(jnp.asarray(k, jnp.int32), 0, keys.size)
  threshold = _kth_largest(keys, k)
  above = keys > threshold
  ties = keys == threshold
  needed = k - jnp.sum(above, dtype=jnp.int32)
  if tie_seed is None:
    choose = lambda: _first_in_order(ties, needed)
  else:
    choose = lambda: _shuffled_among(tie_seed, ties, needed)
  # Usually every tie is taken (a unique k-th score): the choice among
  # ties costs as much as the search, so it runs only when needed.
  take_tie = jax.lax.cond(
      needed >= jnp.sum(ties, dtype=jnp.int32), lambda: ties, choose
  )
  return (above | take_tie).reshape(scores.shape)


def drop_and_grow(
    mask: jax.Array,
    weights: jax.Array,
    grow_scores: jax.Array,
    num_swap: Any,
    tie_seed: Optional[jax.Array] = None,
) -> jax.Array:
  """Drops the ``num_swap`` smallest-|w| active entries and grows as many.

  Growth is among the entries not kept, so an entry may be dropped and grown
  back in the same update. The number of active entries does not change.

  Args:
    mask: bool array, the current topology of one layer.
    weights: the layer's weights (inactive entries are zero).
    grow_scores: larger means grown first (e.g. |gradient|, random).
    num_swap: how many connections to replace; at most the active count.
    tie_seed: breaks ties among equal scores (see ``top_k_mask``).

  Returns:
    The new bool mask.
  """
  num_active = jnp.sum(mask, dtype=jnp.int32)
  num_swap = jnp.minimum(num_swap, num_active)
  grow_seed = None if tie_seed is None else other_seed(tie_seed)
  drop_scores = jnp.where(mask, jnp.abs(weights), -jnp.inf)
  kept = top_k_mask(drop_scores, num_active - num_swap, tie_seed)
  grown = top_k_mask(
      jnp.where(kept, -jnp.inf, grow_scores), num_swap, grow_seed
  )
  return kept | grown


def prune_to(
    mask: jax.Array,
    weights: jax.Array,
    num_keep: Any,
    tie_seed: Optional[jax.Array] = None,
) -> jax.Array:
  """Keeps the ``num_keep`` largest-|w| active entries; never grows."""
  num_keep = jnp.minimum(num_keep, jnp.sum(mask, dtype=jnp.int32))
  return top_k_mask(
      jnp.where(mask, jnp.abs(weights), -jnp.inf), num_keep, tie_seed
  )


def grown_entries(old_masks: PyTree, new_masks: PyTree) -> PyTree:
  """Entries active in ``new_masks`` but not in ``old_masks`` (None: dense)."""
  return jax.tree.map(
      lambda old, new: None if new is None else new & ~old,
      old_masks,
      new_masks,
      is_leaf=tree_paths.is_none,
  )


def keep_counters(
    masks: PyTree, kept_state: optax.OptState, stepped_state: optax.OptState
) -> optax.OptState:
  """``kept_state``'s per-parameter statistics, ``stepped_state``'s others.

  A step that skips the optimizer (RigL's update steps) keeps its
  statistics, but step counters (schedules' ``count``) advance as on any
  step, so a user's optax schedule follows the training step. ``masks``
  gives the params' layout.
  """
  return opt_statistics.keep_statistics(
      kept_state, stepped_state, opt_statistics.template(masks)
  )


def apply_new_masks(
    params: PyTree,
    opt_state: optax.OptState,
    old_masks: PyTree,
    new_masks: PyTree,
) -> tuple[PyTree, optax.OptState]:
  """Zeroes dropped weights and resets the optimizer state of changed entries.

  Params are zeroed where ``new_masks`` are off. Every param-shaped
  optimizer statistic (momentum, Adam moments, Adagrad accumulators, a
  custom transformation's state; ``opt_statistics`` says how they are
  found) is kept only at entries active before and after the update and
  zeroed elsewhere: a grown entry starts with zero weight
  and zero state, whatever value the optimizer initialized it with, and
  inactive entries hold no state. An entry active before and after an
  update, even one dropped and grown back in it, keeps both.
  """
  params = jax.tree.map(
      lambda m, p: p if m is None else jnp.where(m, p, jnp.zeros_like(p)),
      new_masks,
      params,
      is_leaf=tree_paths.is_none,
  )
  # Entries active before and after the update keep their statistics.
  kept = jax.tree.map(
      lambda old, new: None if new is None else old & new,
      old_masks,
      new_masks,
      is_leaf=tree_paths.is_none,
  )
  opt_state = opt_statistics.reset(opt_state, opt_statistics.template(kept))
  return params, opt_state


def churn(old_masks: PyTree, new_masks: PyTree) -> jax.Array:
  """Fraction of the previously active connections that were replaced."""
  grown = jax.tree.leaves(grown_entries(old_masks, new_masks))
  if not grown:
    return jnp.zeros((), jnp.float32)
  num_grown = sum(jnp.sum(g, dtype=jnp.int32) for g in grown)
  num_old = sum(jnp.sum(m, dtype=jnp.int32) for m in jax.tree.leaves(old_masks))
  return num_grown / jnp.maximum(num_old, 1)
