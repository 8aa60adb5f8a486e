"""Mask structures (N:M, constant fan-in) under every method's selections."""

import dataclasses

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rigl_jax import TrainState
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import methods
from rigl_jax.sparse import schedules
from rigl_jax.sparse import structure as structure_lib

TWO_FOUR = structure_lib.MaskStructure('n_m', 2, 4)
ONE_FOUR = structure_lib.MaskStructure('n_m', 1, 4)
FAN_IN = structure_lib.MaskStructure('fan_in')


def group_counts(mask, kind, m=4):
  """Active entries per group, computed apart from the library's grouping."""
  mask = np.asarray(mask)
  units = mask.reshape(
      -1, mask.shape[-1]
  )  # [fan-in, units], inputs last-but-one
  if kind == 'fan_in':
    return units.sum(axis=0)
  # Groups of m consecutive inputs (the second-to-last axis) per unit,
  # at every position of the leading (spatial) axes.
  inputs = mask.shape[-2]
  per_input = mask.reshape(-1, inputs, mask.shape[-1])
  grouped = per_input.reshape(per_input.shape[0], inputs // m, m, -1)
  return grouped.sum(axis=2).reshape(-1)


@given(
    st.sampled_from([(8, 3), (3, 3, 4, 5), (12, 7), (1, 1, 16, 2)]),
    st.integers(0, 2**31 - 1),
)
@settings(max_examples=10, deadline=None)
def test_groups_are_a_permutation_of_the_kernel(shape, seed):
  x = jax.random.normal(jax.random.key(seed), shape)
  for structure in (TWO_FOUR, FAN_IN):
    groups = structure.to_groups(x)
    assert groups.shape[1] == structure.group_size(shape)
    np.testing.assert_array_equal(structure.from_groups(groups, shape), x)


def test_n_m_groups_run_along_the_input_axis():
  kernel = np.arange(8 * 2).reshape(8, 2)  # Dense: 8 inputs, 2 units
  groups = np.asarray(TWO_FOUR.to_groups(kernel))
  np.testing.assert_array_equal(groups[0], kernel[0:4, 0])
  np.testing.assert_array_equal(groups[1], kernel[4:8, 0])
  np.testing.assert_array_equal(groups[2], kernel[0:4, 1])


@given(
    st.sampled_from([(8, 3), (3, 3, 4, 5), (12, 7)]),
    st.floats(0.05, 0.95),
    st.integers(0, 2**31 - 1),
)
@settings(max_examples=15, deadline=None)
def test_random_masks_hold_the_structure(shape, sparsity, seed):
  params = {'k': jnp.zeros(shape)}
  fan_in = masks_lib.random_masks(
      jax.random.key(seed), params, {'k': sparsity}, FAN_IN
  )['k']
  expected = FAN_IN.active_per_group(sparsity, shape)
  assert set(group_counts(fan_in, 'fan_in')) == {expected}
  two_four = masks_lib.random_masks(
      jax.random.key(seed), params, {'k': 0.5}, TWO_FOUR
  )['k']
  assert set(group_counts(two_four, 'n_m')) == {2}


def test_shapes_that_cannot_hold_n_m_are_named():
  assert 'does not divide into groups of M=4' in TWO_FOUR.problem((6, 3))
  assert 'divide' in TWO_FOUR.problem((3, 3, 1, 8))  # Depthwise.
  assert TWO_FOUR.problem((3, 3, 8, 8)) is None
  assert FAN_IN.problem((5, 3)) is None
  with pytest.raises(ValueError, match='0 < n <= m'):
    structure_lib.MaskStructure('n_m', 5, 4)


def _method(name, structure):
  schedule = schedules.UpdateSchedule(0, 8, 2)
  drop = schedules.DropFraction('cosine', 0.3, 8)
  cls = methods.METHODS[name]
  if name in ('set', 'rigl', 'snfs'):
    method = cls(update_schedule=schedule, drop_fraction=drop)
  elif name == 'pruning':
    method = cls(
        schedule=schedules.PruningSchedule(
            begin_step=0, end_step=6, frequency=2, initial_sparsity=0.0
        )
    )
  else:
    method = cls()
  return dataclasses.replace(method, structure=structure)


@pytest.mark.parametrize(
    'name', ['static', 'snip', 'set', 'rigl', 'snfs', 'pruning']
)
@pytest.mark.parametrize(
    'structure,sparsity', [(TWO_FOUR, 0.5), (ONE_FOUR, 0.75), (FAN_IN, 0.8)]
)
def test_every_method_keeps_the_structure_at_every_step(
    name, structure, sparsity
):
  shapes = {'dense': (16, 6), 'conv': (3, 3, 8, 4)}
  params = {
      k: jax.random.normal(jax.random.key(i), s)
      for i, (k, s) in enumerate(shapes.items())
  }
  state = TrainState.create(
      params=params,
      tx=optax.sgd(0.1, momentum=0.9),
      method=_method(name, structure),
      sparsities={k: sparsity for k in shapes},
      rng=jax.random.key(1),
  )
  step = jax.jit(lambda s, g: s.apply_gradients(grads=g))
  kind = structure.kind
  final = {
      k: structure.active_per_group(sparsity, s) for k, s in shapes.items()
  }
  changed = False
  for t in range(9):
    grads = {
        k: jax.random.normal(jax.random.key(100 + t), s)
        for k, s in shapes.items()
    }
    old = state.masks
    state = step(state, grads)
    for k in shapes:
      counts = set(group_counts(state.masks[k], kind))
      if name != 'pruning' or t >= 6:
        assert counts == {final[k]}, (t, k, counts)
      else:  # Pruning passes from dense to the final count, group by group.
        assert len(counts) == 1, (t, k, counts)
      grown = np.asarray(state.masks[k] & ~old[k])
      changed |= grown.any()
      if grown.any():  # Grown entries start at zero, with zero momentum.
        assert not np.asarray(state.params[k])[grown].any()
        momentum = jax.tree.leaves(state.opt_state)
        trace = [m for m in momentum if getattr(m, 'shape', None) == shapes[k]]
        assert not np.asarray(trace[0])[grown].any()
  if name in ('set', 'rigl', 'snfs'):
    assert changed  # Entries were dropped and grown.


def srigl(gamma_sal=0.5, no_ablation=None):
  return methods.METHODS['srigl'](
      update_schedule=schedules.UpdateSchedule(0, 8, 2),
      drop_fraction=schedules.DropFraction('constant', 0.25, 8),
      gamma_sal=gamma_sal,
      no_ablation=no_ablation,
  )


def srigl_layer():
  """8 inputs, 4 units at 50%: 4 inputs each, rows 0-3 active."""
  mask = np.zeros((8, 4), bool)
  mask[:4] = True
  weights = np.where(mask, 1.0 + np.arange(32).reshape(8, 4), 0.0)
  weights[:4, 3] = 0.01  # Unit 3: tiny weights ...
  grads = np.zeros((8, 4))
  grads[7, :3] = [3.0, 2.0, 1.0]  # ... and no gradient.
  grads[6, :3] = 0.5
  return mask, weights, grads


def test_srigl_ablates_a_unit_without_salient_weights_and_spreads_its_budget():
  """Worked by hand: n = 16 active, f = 0.25: n_keep = 12, n_prune = 4.

  Salient: the 12 largest |w| (units 0-2's weights) and the 4 largest
  |gradient| (rows 7 and 6 of units 0-2). Unit 3 has 0 salient weights,
  below max(1, floor(0.5 * 4)) = 2: ablated. The budget 16 over 3 units
  gives a fan-in of 5: each unit keeps its 4 weights and grows row 7.
  """
  mask, weights, grads = srigl_layer()
  method = srigl()
  state = method.init_state({'k': weights}, None, {'k': 0.5})
  assert int(state['budget']['k']) == 16
  new = np.asarray(
      method.update_masks(
          jax.random.key(0),
          0,
          {'k': jnp.asarray(weights)},
          {'k': jnp.asarray(grads)},
          {'k': jnp.asarray(mask)},
          state,
      )['k']
  )
  expected = np.zeros((8, 4), bool)
  expected[:4, :3] = True
  expected[7, :3] = True
  np.testing.assert_array_equal(new, expected)


def test_srigl_keeps_the_output_layer_whole():
  mask, weights, grads = srigl_layer()
  method = srigl(no_ablation=('^k$',))
  state = method.init_state({'k': weights}, None, {'k': 0.5})
  new = np.asarray(
      method.update_masks(
          jax.random.key(0),
          0,
          {'k': jnp.asarray(weights)},
          {'k': jnp.asarray(grads)},
          {'k': jnp.asarray(mask)},
          state,
      )['k']
  )
  # The 12 largest |w| are units 0-2's: they keep their fan-in of 4 and
  # grow nothing; unit 3 loses its 4 tiny weights and grows 4 back.
  assert list(new.sum(axis=0)) == [4, 4, 4, 4]  # No unit ablated.
  assert new[:4, :3].all() and not new[4:, :3].any()


def test_ablated_units_stay_empty_and_the_others_keep_one_fan_in():
  params = {'k': jax.random.normal(jax.random.key(0), (16, 8))}
  state = TrainState.create(
      params=params,
      tx=optax.sgd(0.1),
      method=srigl(gamma_sal=0.9),
      sparsities={'k': 0.75},
      rng=jax.random.key(1),
  )
  step = jax.jit(lambda s, g: s.apply_gradients(grads=g))
  ablated = set()
  for t in range(9):
    # Gradients only ever reach the first half of the units.
    grads = {
        'k': jnp.zeros((16, 8))
        .at[:, :4]
        .set(jax.random.normal(jax.random.key(t), (16, 4)))
    }
    state = step(state, grads)
    counts = np.asarray(state.masks['k']).sum(axis=0)
    now = {u for u, c in enumerate(counts) if c == 0}
    assert ablated <= now  # Once ablated, always ablated.
    ablated = now
    assert len(set(counts[counts > 0])) == 1  # One fan-in for the rest.
  assert ablated  # Some units without gradient were ablated.
