"""Human-readable paths of pytree leaves, e.g. ``Dense_0/kernel``.

Layer selection (``dense_layers``, custom sparsities), logging and FLOP
reports all name parameters by the same '/'-joined key path.
"""

from typing import Any

import jax

# Nested dicts, lists and tuples of arrays (params, masks, optimizer state).
PyTree = Any


def key_path_to_str(key_path: tuple[Any, ...]) -> str:
  """Joins the keys of a ``jax.tree_util`` key path with '/'."""
  parts = []
  for key in key_path:
    if isinstance(key, jax.tree_util.DictKey):
      parts.append(str(key.key))
    elif isinstance(key, jax.tree_util.GetAttrKey):
      parts.append(key.name)
    elif isinstance(key, jax.tree_util.SequenceKey):
      parts.append(str(key.idx))
    elif isinstance(key, jax.tree_util.FlattenedIndexKey):
      parts.append(str(key.key))
    else:
      parts.append(str(key))
  return '/'.join(parts)


def named_leaves(tree: Any) -> list[tuple[str, Any]]:
  """Returns ``(path, leaf)`` for every leaf of ``tree`` in flattening order."""
  with_paths, _ = jax.tree_util.tree_flatten_with_path(tree)
  return [(key_path_to_str(path), leaf) for path, leaf in with_paths]


def is_none(x: Any) -> bool:
  """``is_leaf`` predicate that keeps ``None`` (a dense layer) as a leaf."""
  return x is None
