"""Straight lines and Bézier curves between two parameter pytrees."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rigl_jax.analysis import paths


def random_tree(seed):
  rng = np.random.default_rng(seed)
  return {
      'layer': {
          'kernel': jnp.asarray(rng.standard_normal((5, 7)), jnp.float32),
          'bias': jnp.asarray(rng.standard_normal(7), jnp.float32),
      },
      'scale': jnp.asarray(rng.standard_normal(3), jnp.bfloat16),
  }


def assert_trees_identical(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert x.dtype == y.dtype
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y), strict=True)


@pytest.mark.parametrize('order', [1, 2, 3, 5])
def test_bernstein_weights_are_exactly_one_hot_at_the_ends(order):
  np.testing.assert_array_equal(
      paths.bernstein_weights(0.0, order), np.eye(order + 1)[0]
  )
  np.testing.assert_array_equal(
      paths.bernstein_weights(1.0, order), np.eye(order + 1)[-1]
  )
  for t in (0.1, 0.5, 0.77):
    weights = paths.bernstein_weights(t, order)
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-6)
    assert (weights > 0).all()


@pytest.mark.parametrize('order', [1, 2, 3])
def test_curve_endpoints_are_exactly_the_two_solutions(order):
  start, end = random_tree(0), random_tree(1)
  rng = np.random.default_rng(2)
  # Free points far from the line, so any leak of them would show.
  free = tuple(
      jax.tree.map(
          lambda p: p
          + jnp.asarray(1e3 * rng.standard_normal(p.shape), p.dtype),
          start,
      )
      for _ in range(order - 1)
  )
  point = jax.jit(paths.bezier_point)
  assert_trees_identical(point(start, free, end, 0.0), start)
  assert_trees_identical(point(start, free, end, 1.0), end)
  assert_trees_identical(paths.bezier_point(start, free, end, 0.0), start)
  assert_trees_identical(paths.bezier_point(start, free, end, 1.0), end)


def test_linear_point_is_the_convex_combination():
  start, end = random_tree(0), random_tree(1)
  assert_trees_identical(paths.linear_point(start, end, 0.0), start)
  assert_trees_identical(paths.linear_point(start, end, 1.0), end)
  middle = paths.linear_point(start, end, 0.25)
  np.testing.assert_allclose(
      middle['layer']['kernel'],
      0.75 * start['layer']['kernel'] + 0.25 * end['layer']['kernel'],
      rtol=1e-6,
  )


@pytest.mark.parametrize('order', [2, 3, 4])
def test_initial_curve_is_the_straight_line(order):
  start, end = random_tree(0), random_tree(1)
  free = paths.initial_free_points(start, end, order)
  assert len(free) == order - 1
  for t in (0.2, 0.5, 0.9):
    curve = paths.bezier_point(start, free, end, t)
    line = paths.linear_point(start, end, t)
    np.testing.assert_allclose(
        curve['layer']['kernel'], line['layer']['kernel'], atol=1e-5
    )


def test_order_must_be_positive():
  with pytest.raises(ValueError, match='order'):
    paths.initial_free_points(random_tree(0), random_tree(1), 0)


def test_union_subspace_is_dense_where_either_is():
  a = {'k': jnp.array([True, False, False]), 'b': None, 'c': jnp.array([True])}
  b = {'k': jnp.array([False, True, False]), 'b': None, 'c': None}
  union = paths.union_subspace(a, b)
  np.testing.assert_array_equal(union['k'], [True, True, False])
  assert union['b'] is None and union['c'] is None


def test_free_points_outside_the_subspace_do_not_move_the_curve():
  start = {'k': jnp.array([1.0, 2.0, 0.0]), 'b': jnp.array([1.0])}
  end = {'k': jnp.array([3.0, 0.0, 0.0]), 'b': jnp.array([2.0])}
  subspace = {'k': jnp.array([True, True, False]), 'b': None}
  free = ({'k': jnp.array([5.0, 5.0, 5.0]), 'b': jnp.array([5.0])},)
  restricted = paths.restrict(free[0], subspace)
  np.testing.assert_array_equal(restricted['k'], [5.0, 5.0, 0.0])
  np.testing.assert_array_equal(restricted['b'], [5.0])
  point = paths.bezier_point(start, free, end, 0.5, subspace)
  # 0.25 * start + 0.5 * free + 0.25 * end, the free point restricted.
  np.testing.assert_array_equal(point['k'], [3.5, 3.0, 0.0])
  np.testing.assert_array_equal(point['b'], [3.25])
  initial = paths.initial_free_points(
      {'k': jnp.array([1.0, 2.0, 7.0])},
      {'k': jnp.ones(3)},
      2,
      {'k': subspace['k']},
  )
  np.testing.assert_array_equal(initial[0]['k'], [1.0, 1.5, 0.0])
