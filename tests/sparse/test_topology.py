"""Selection, drop-and-grow and the zeroing of inactive entries."""

import math

from hypothesis import given
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rigl_jax.sparse import topology
from rigl_jax.sparse import transforms


def test_top_k_mask_breaks_ties_towards_lower_index():
  scores = jnp.array([1.0, 3.0, 3.0, 0.0, 3.0])
  np.testing.assert_array_equal(
      topology.top_k_mask(scores, 2), [False, True, True, False, False]
  )
  np.testing.assert_array_equal(topology.top_k_mask(scores, 0), [False] * 5)


@given(
    st.lists(st.integers(-3, 3), min_size=1, max_size=40), st.integers(0, 45)
)
def test_top_k_mask_equals_a_stable_sort_with_many_ties(values, k):
  scores = jnp.asarray(values, jnp.float32)
  order = np.argsort(-np.asarray(values), kind='stable')
  expected = np.zeros(len(values), bool)
  expected[order[:k]] = True
  np.testing.assert_array_equal(topology.top_k_mask(scores, k), expected)


def test_drop_and_grow_drops_smallest_and_grows_highest_scores():
  mask = jnp.array([True, True, True, False, False, False])
  weights = jnp.array([0.5, -0.1, 2.0, 0.0, 0.0, 0.0])
  scores = jnp.array([9.0, 9.0, 9.0, 1.0, 5.0, 3.0])
  new = topology.drop_and_grow(mask, weights, scores, 1)
  # Index 1 has the smallest |w| and is dropped, but its score is the largest
  # among the entries not kept, so it is grown straight back.
  np.testing.assert_array_equal(new, [True, True, True, False, False, False])
  new = topology.drop_and_grow(mask, weights, scores.at[1].set(0.0), 1)
  np.testing.assert_array_equal(new, [True, False, True, False, True, False])


def test_zero_inactive_zeroes_weights_and_every_param_shaped_state():
  tx = transforms.sparse_optimizer(optax.adam(0.1))
  params = {'w': jnp.array([1.0, 2.0, 3.0, 0.0]), 'b': jnp.ones(2)}
  state = tx.init(params)
  _, state = tx.update(
      jax.tree.map(jnp.ones_like, params),
      state,
      params,
      masks={'w': jnp.ones(4, bool), 'b': None},
  )
  new = {'w': jnp.array([False, True, True, True]), 'b': None}
  p2, s2 = topology.zero_inactive(tx, params, state, new)
  np.testing.assert_array_equal(p2['w'], [0.0, 2.0, 3.0, 0.0])
  np.testing.assert_array_equal(p2['b'], params['b'])
  adam_state = s2[1][0]
  for moment in (adam_state.mu, adam_state.nu):
    np.testing.assert_array_equal(moment['w'] == 0, [True, False, False, False])
    assert bool((moment['b'] != 0).all())
  old = {'w': jnp.array([True, True, True, False]), 'b': None}
  assert float(topology.churn(old, new)) == pytest.approx(1 / 3)


@given(
    values=st.lists(
        st.one_of(
            st.floats(allow_nan=False, width=32),
            st.sampled_from([0.0, -0.0, 1.0, -1.0]),
        ),
        min_size=1,
        max_size=60,
    ),
    fraction=st.floats(0.0, 1.0),
)
def test_top_k_mask_matches_a_stable_sort(values, fraction):
  scores = np.asarray(values, np.float32)
  k = int(round(fraction * scores.size))
  # The reference: a stable sort by descending score (-0.0 below +0.0).
  keys = [
      (-float(v), math.copysign(1.0, -float(v)) if v == 0 else 0.0, i)
      for i, v in enumerate(scores)
  ]
  chosen = {i for *_, i in sorted(keys)[:k]}
  expected = np.array([i in chosen for i in range(scores.size)])
  np.testing.assert_array_equal(
      topology.top_k_mask(jnp.asarray(scores), k), expected
  )
