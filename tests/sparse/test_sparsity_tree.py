"""TrainState.create checks a hand-made sparsity tree and names the leaf."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rigl_jax
from rigl_jax.sparse import checks
from rigl_jax.sparse import methods


def _params():
  return {
      'a': {'kernel': jnp.ones((8, 16)), 'bias': jnp.zeros(16)},
      'b': {'kernel': jnp.ones((16, 4)), 'bias': jnp.zeros(4)},
  }


def _create(sparsities):
  return rigl_jax.TrainState.create(
      params=_params(),
      tx=optax.sgd(0.1),
      method=methods.static.Static(),
      sparsities=sparsities,
      rng=jax.random.key(0),
  )


def _tree(a_kernel, b_kernel=0.5):
  return {
      'a': {'kernel': a_kernel, 'bias': None},
      'b': {'kernel': b_kernel, 'bias': None},
  }


@pytest.mark.parametrize(
    'value, says',
    [
        (1.5, 'in [0, 1)'),
        (-0.1, 'in [0, 1)'),
        (1.0, 'in [0, 1)'),
        (float('nan'), 'in [0, 1)'),
        (float('inf'), 'in [0, 1)'),
        ('0.5', 'in [0, 1)'),
        (True, 'in [0, 1)'),
        (0.999, 'keeps no active weight'),
    ],
)
def test_a_bad_value_names_its_leaf(value, says):
  with pytest.raises(checks.InvalidArgument) as e:
    _create(_tree(value))
  assert e.value.name == 'sparsities'
  assert says in str(e.value)
  assert "'a/kernel'" in str(e.value)


@pytest.mark.parametrize(
    'tree, names',
    [
        (0.9, "'a/bias' of params has no sparsity"),
        ({'a': {'kernel': 0.5, 'bias': None}}, "'b/bias' of params"),
        (
            {
                'a': {'kernel': 0.5, 'bias': None, 'extra': 0.5},
                'b': {'kernel': 0.5, 'bias': None},
            },
            "'a/extra' is not a leaf of params",
        ),
    ],
)
def test_a_tree_of_another_structure_names_the_first_mismatch(tree, names):
  with pytest.raises(checks.InvalidArgument, match='structure of params') as e:
    _create(tree)
  assert names in str(e.value)


def test_numpy_and_jax_scalars_are_accepted():
  state = _create(_tree(np.float32(0.75), jnp.asarray(0.5)))
  assert int(state.masks['a']['kernel'].sum()) == 32
  assert int(state.masks['b']['kernel'].sum()) == 32


def test_get_sparsities_trees_pass():
  state = _create(rigl_jax.get_sparsities(_params(), 0.9, 'erk'))
  assert state.masks['a']['bias'] is None
