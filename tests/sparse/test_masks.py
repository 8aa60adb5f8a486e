"""Mask creation, application and counting."""

from hypothesis import given
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np

from rigl_jax import get_sparsities
from rigl_jax.sparse import masks as masks_lib
from rigl_jax import random_masks


def params():
  return {
      'a': {'kernel': jnp.ones((7, 13)), 'bias': jnp.ones(13)},
      'b': {'kernel': jnp.ones((3, 3, 2, 5))},
  }


@given(sparsity=st.floats(0.0, 0.999), seed=st.integers(0, 2**31 - 1))
def test_random_masks_have_exactly_the_rounded_count(sparsity, seed):
  p = params()
  s = get_sparsities(p, sparsity, 'uniform')
  m = random_masks(jax.random.PRNGKey(seed), p, s)
  assert m['a']['bias'] is None
  for name in ('a', 'b'):
    mask = m[name]['kernel']
    assert mask.dtype == jnp.bool_
    assert mask.shape == p[name]['kernel'].shape
    assert int(mask.sum()) == round((1 - s[name]['kernel']) * mask.size)


def test_same_seed_same_masks_other_seed_other_masks():
  p = params()
  s = get_sparsities(p, 0.5, 'uniform')
  m1 = random_masks(jax.random.PRNGKey(3), p, s)
  m2 = random_masks(jax.random.PRNGKey(3), p, s)
  m3 = random_masks(jax.random.PRNGKey(4), p, s)
  assert np.array_equal(m1['a']['kernel'], m2['a']['kernel'])
  assert not np.array_equal(m1['a']['kernel'], m3['a']['kernel'])


def test_apply_masks_zeroes_inactive_and_leaves_dense_leaves():
  p = params()
  m = random_masks(jax.random.PRNGKey(0), p, get_sparsities(p, 0.7, 'uniform'))
  masked = masks_lib.apply_masks(p, m)
  np.testing.assert_array_equal(
      masked['a']['kernel'], m['a']['kernel'].astype(jnp.float32)
  )
  np.testing.assert_array_equal(masked['a']['bias'], p['a']['bias'])


def test_counts_and_statistics():
  p = params()
  s = get_sparsities(p, 0.7, 'uniform')
  m = random_masks(jax.random.PRNGKey(0), p, s)
  expected_a, expected_b = round(0.3 * 91), round(0.3 * 90)
  assert masks_lib.num_nonzero_params(p, s) == expected_a + expected_b + 13
  assert masks_lib.overall_sparsity(m) == 1 - (expected_a + expected_b) / 181
  assert masks_lib.layer_sparsities(m) == {
      'a/kernel': 1 - expected_a / 91,
      'b/kernel': 1 - expected_b / 90,
  }
  assert all(leaf.dtype == bool for leaf in jax.tree.leaves(m))
  full = masks_lib.full_masks(p, s)
  assert bool(full['b']['kernel'].all()) and full['a']['bias'] is None
