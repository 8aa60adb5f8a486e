"""The per-parameter statistics in any optax optimizer's state.

A topology update resets the statistics of changed entries, and a step
that skips the optimizer keeps them while counters advance; both need to
know which parts of an optimizer's state belong to which parameter. optax's
``tree_utils.tree_map_params`` finds them by running ``tx.init`` on
placeholders, which fails on states holding ``MaskedNode``s
(``optax.masked``, ``optax.multi_transform``), a list per parameter
(``optax.sm3``) or factored statistics (``optax.adafactor``).

Here they are found by structure: a statistic is any subtree of the state
laid out like the params (the same containers and keys down to each
parameter). At each parameter it holds an array of the parameter's shape,
reset entry by entry, or something else (a factored row or column, a list,
a ``MaskedNode``), which a reset leaves as it is.
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp

from rigl_jax.sparse.tree_paths import PyTree

# Marks a dense parameter in a template (None is an empty subtree to JAX).
DENSE = 'dense'


def template(masks: PyTree) -> PyTree:
  """The params' layout: each mask, or DENSE where a parameter is dense."""
  return jax.tree.map(
      lambda m: DENSE if m is None else m, masks, is_leaf=lambda m: m is None
  )


def _is_statistic(node: Any, layout: PyTree) -> bool:
  """Whether ``node`` is laid out like the params (``layout`` a prefix)."""
  if jax.tree_util.treedef_is_leaf(jax.tree.structure(layout)):
    # A lone parameter: only an array of its shape is its statistic.
    return not isinstance(layout, str) and (
        getattr(node, 'shape', None) == layout.shape
    )
  try:
    jax.tree.map(lambda *_: None, layout, node)
  except (ValueError, TypeError):
    return False
  return True


def map_statistics(
    fn: Callable[[Any, Any], Any], opt_state: PyTree, layout: PyTree
) -> PyTree:
  """``fn(layout_leaf, part)`` on each parameter's part of each statistic."""

  def visit(node):
    if _is_statistic(node, layout):
      return jax.tree.map(fn, layout, node)
    return node

  return jax.tree.map(
      visit, opt_state, is_leaf=lambda node: _is_statistic(node, layout)
  )


def reset(opt_state: PyTree, keep: PyTree) -> PyTree:
  """Zeroes each statistic where ``keep`` (a template) is False.

  Parts that are not of their parameter's shape, and dense parameters'
  parts, are left unchanged.
  """

  def reset_part(keep_leaf, part):
    if isinstance(keep_leaf, str) or getattr(part, 'shape', None) != (
        keep_leaf.shape
    ):
      return part
    return jnp.where(keep_leaf, part, jnp.zeros_like(part))

  return map_statistics(reset_part, opt_state, keep)


def keep_statistics(
    kept_state: PyTree, stepped_state: PyTree, layout: PyTree
) -> PyTree:
  """``kept_state``'s statistics with ``stepped_state``'s other leaves."""
  return jax.tree.map(
      lambda kept, stepped: kept if _is_statistic(kept, layout) else stepped,
      kept_state,
      stepped_state,
      is_leaf=lambda node: _is_statistic(node, layout),
  )
