"""Parameter paths between two solutions: straight lines and Bézier curves.

A Bézier curve of order n has control points θ_0 = start, θ_1..θ_{n-1}
(the free points, the only ones a fit changes) and θ_n = end:

  point(t) = Σ_k C(n, k) (1 - t)^(n - k) t^k θ_k.

The straight line is the curve of order 1 (no free points). A curve may be
restricted to a subspace: a pytree of boolean masks with the params'
structure, a None leaf (or a None subspace) being dense. Free points are
masked in the parametrization, so the curve never leaves the subspace when
its endpoints lie in it.
"""

import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp

from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse.tree_paths import PyTree


def bernstein_weights(t: jax.Array, order: int) -> jax.Array:
  """The ``order + 1`` Bernstein weights C(n, k) (1 - t)^(n - k) t^k at t.

  Integer powers make them exactly (1, 0, ..., 0) at t = 0 and
  (0, ..., 0, 1) at t = 1, so the curve passes exactly through both
  solutions there.
  """
  t = jnp.asarray(t, jnp.float32)
  return jnp.stack(
      [
          math.comb(order, k) * (1 - t) ** (order - k) * t**k
          for k in range(order + 1)
      ]
  )


def restrict(tree: PyTree, subspace: Optional[PyTree]) -> PyTree:
  """Zeroes the entries of ``tree`` outside ``subspace`` (None: dense)."""
  return tree if subspace is None else masks_lib.apply_masks(tree, subspace)


def union_subspace(masks_a: PyTree, masks_b: PyTree) -> PyTree:
  """The subspace spanned by two solutions' masks; dense where either is."""
  return masks_lib.map_masks(
      lambda a, b: None if a is None or b is None else a | b, masks_a, masks_b
  )


def initial_free_points(
    start: PyTree,
    end: PyTree,
    order: int,
    subspace: Optional[PyTree] = None,
) -> tuple[PyTree, ...]:
  """θ_1..θ_{n-1} evenly spaced on the line, so the curve starts as the line."""
  if order < 1:
    raise ValueError(f'a Bézier curve needs order >= 1, got {order}')

  def on_line(fraction):
    point = jax.tree.map(
        lambda a, b: (1 - fraction) * a + fraction * b, start, end
    )
    return restrict(point, subspace)

  return tuple(on_line(k / order) for k in range(1, order))


def bezier_point(
    start: PyTree,
    free: Sequence[PyTree],
    end: PyTree,
    t: jax.Array,
    subspace: Optional[PyTree] = None,
) -> PyTree:
  """The curve's point at ``t`` in [0, 1]; exactly start at 0 and end at 1.

  Args:
    start: the first solution, θ_0.
    free: the free control points θ_1..θ_{n-1} (empty for the line).
    end: the second solution, θ_n.
    t: a scalar in [0, 1].
    subspace: masks the free points are restricted to, or None (dense).

  Returns:
    A pytree with the structure and dtypes of ``start``.
  """
  points = [start, *(restrict(p, subspace) for p in free), end]
  weights = bernstein_weights(t, len(points) - 1)

  def combine(*leaves):
    total = sum(w * leaf for w, leaf in zip(weights, leaves))
    return total.astype(leaves[0].dtype)

  return jax.tree.map(combine, *points)


def linear_point(start: PyTree, end: PyTree, t: jax.Array) -> PyTree:
  """(1 - t) start + t end, exactly start at 0 and end at 1."""
  return bezier_point(start, (), end, t)
