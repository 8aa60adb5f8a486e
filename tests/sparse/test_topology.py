"""Selection, drop-and-grow, tie-breaking and the reset of changed entries."""

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


def test_apply_new_masks_zeroes_dropped_weights_and_changed_state():
  tx = transforms.sparse_optimizer(optax.adam(0.1))
  params = {'w': jnp.array([1.0, 2.0, 3.0, 0.0]), 'b': jnp.ones(2)}
  old = {'w': jnp.array([True, True, True, False]), 'b': None}
  state = tx.init(params)
  _, state = tx.update(
      jax.tree.map(jnp.ones_like, params),
      state,
      params,
      masks={'w': jnp.ones(4, bool), 'b': None},
  )
  new = {'w': jnp.array([False, True, True, True]), 'b': None}
  p2, s2 = topology.apply_new_masks(params, state, old, new)
  np.testing.assert_array_equal(p2['w'], [0.0, 2.0, 3.0, 0.0])
  np.testing.assert_array_equal(p2['b'], params['b'])
  adam_state = s2[1][0]
  for moment in (adam_state.mu, adam_state.nu):
    # Dropped (0) and grown (3) entries are reset, kept ones keep theirs.
    np.testing.assert_array_equal(moment['w'] == 0, [True, False, False, True])
    assert bool((moment['b'] != 0).all())
  assert float(topology.churn(old, new)) == pytest.approx(1 / 3)


def ones_state_transformation():
  """A user's transformation whose state starts at one everywhere."""

  def init_fn(params):
    return {'trace': jax.tree.map(jnp.ones_like, params)}

  def update_fn(updates, state, params=None):
    del params
    return updates, state

  return optax.GradientTransformation(init_fn, update_fn)


@pytest.mark.parametrize(
    'optimizer,initial',
    [
        (lambda: optax.adagrad(0.1, initial_accumulator_value=0.1), 0.1),
        (ones_state_transformation, 1.0),
    ],
)
def test_grown_entries_start_with_zero_state_whatever_its_initial_value(
    optimizer, initial
):
  tx = transforms.sparse_optimizer(optimizer())
  params = {'w': jnp.array([1.0, 2.0, 0.0, 0.0])}
  old = {'w': jnp.array([True, True, False, False])}
  new = {'w': jnp.array([False, True, True, False])}
  state = tx.init(params)
  _, state = topology.apply_new_masks(params, state, old, new)
  (leaf,) = [
      x for x in jax.tree.leaves(state) if getattr(x, 'shape', None) == (4,)
  ]
  # Never-active grown entry 2 starts at zero like dropped entry 0; the
  # entry active before and after keeps its state.
  np.testing.assert_array_equal(leaf, np.float32([0.0, initial, 0.0, 0.0]))


def test_tied_choices_spread_over_the_tensor():
  scores = jnp.zeros((100, 100))
  seeds = [jnp.uint32(s) for s in (0, 1)]
  picks = [topology.top_k_mask(scores, 500, seed) for seed in seeds]
  for pick in picks:
    assert int(pick.sum()) == 500
    rows = np.nonzero(np.asarray(pick))[0]
    # Index order would take rows 0 to 4; a spread covers most rows.
    assert len(set(rows.tolist())) > 90 and 40 < rows.mean() < 60
  assert bool(jnp.any(picks[0] != picks[1]))
  np.testing.assert_array_equal(
      picks[0], topology.top_k_mask(scores, 500, seeds[0])
  )
  # Entries above the tie are always taken, whatever the seed.
  scores = scores.at[99, 99].set(1.0)
  assert bool(topology.top_k_mask(scores, 3, seeds[1])[99, 99])


def test_growth_among_zero_gradients_is_spread_by_the_seed():
  # 5 active weights, 2 to swap, every inactive gradient zero.
  mask = jnp.zeros(1000, bool).at[:5].set(True)
  weights = jnp.where(mask, jnp.arange(1000.0) + 1, 0.0)
  grown = [
      topology.drop_and_grow(
          mask, weights, jnp.zeros(1000), 2, jnp.uint32(seed)
      )
      & ~mask
      for seed in range(20)
  ]
  positions = np.concatenate([np.nonzero(np.asarray(g))[0] for g in grown])
  assert len(positions) == 40 and positions.max() > 500
  kept = [
      topology.drop_and_grow(
          mask, weights, jnp.zeros(1000), 2, jnp.uint32(seed)
      )
      & mask
      for seed in range(3)
  ]
  for k in kept:  # The two smallest weights are dropped whatever the seed.
    np.testing.assert_array_equal(np.nonzero(np.asarray(k))[0], [2, 3, 4])


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
