"""Per-layer sparsities: hand-computed cases and the global budget."""

import math

from hypothesis import given
from hypothesis import strategies as st
import jax
import jax.numpy as jnp
import pytest

from rigl_jax import get_sparsities
from rigl_jax.sparse import checks
from rigl_jax.sparse import distributions


def mlp_and_conv():
  """A conv layer (3x3x4x8), two dense layers and their biases."""
  return {
      'Conv_0': {'kernel': jnp.zeros((3, 3, 4, 8)), 'bias': jnp.zeros(8)},
      'Dense_0': {'kernel': jnp.zeros((20, 30)), 'bias': jnp.zeros(30)},
      'Dense_1': {'kernel': jnp.zeros((30, 10)), 'bias': jnp.zeros(10)},
      'BatchNorm_0': {'scale': jnp.zeros(8)},
  }


def test_uniform_gives_every_kernel_the_sparsity_and_biases_none():
  s = get_sparsities(mlp_and_conv(), 0.8, 'uniform')
  assert s['Conv_0']['kernel'] == 0.8
  assert s['Dense_0']['kernel'] == 0.8
  assert s['Dense_1']['kernel'] == 0.8
  assert s['Conv_0']['bias'] is None
  assert s['BatchNorm_0']['scale'] is None


def test_erk_by_hand():
  # raw: conv (3+3+4+8)/288 = 1/16; dense0 50/600 = 1/12; dense1 40/300 = 2/15.
  # Budget 0.1 * (288 + 600 + 300) = 118.8 = eps * (18 + 50 + 40) -> eps=1.1.
  s = get_sparsities(mlp_and_conv(), 0.9, 'erk')
  eps = 118.8 / 108
  assert s['Conv_0']['kernel'] == pytest.approx(1 - eps / 16)
  assert s['Dense_0']['kernel'] == pytest.approx(1 - eps / 12)
  assert s['Dense_1']['kernel'] == pytest.approx(1 - eps * 2 / 15)


def test_erdos_renyi_uses_only_the_last_two_dims():
  # conv raw (4 + 8) / 32 = 3/8; dense raws as for ERK.
  s = get_sparsities(mlp_and_conv(), 0.9, 'erdos_renyi')
  eps = 118.8 / (288 * 3 / 8 + 50 + 40)
  assert s['Conv_0']['kernel'] == pytest.approx(1 - eps * 3 / 8)
  assert s['Dense_1']['kernel'] == pytest.approx(1 - eps * 2 / 15)


def test_erk_makes_layers_dense_when_their_density_would_exceed_one():
  # A 2x2 layer has raw 1, a 100x100 layer raw 0.02. At sparsity 0.5 the
  # first would need density > 1: it becomes dense and the second pays.
  params = {'small': jnp.zeros((2, 2)), 'big': jnp.zeros((100, 100))}
  s = get_sparsities(params, 0.5, 'erk')
  assert s['small'] == 0.0
  assert s['big'] == pytest.approx(1 - (0.5 * 10004 - 4) / 10000)


def test_erk_power_scale_zero_is_uniform():
  s = get_sparsities(mlp_and_conv(), 0.7, 'erk', erk_power_scale=0.0)
  for path in ('Conv_0', 'Dense_0', 'Dense_1'):
    assert s[path]['kernel'] == pytest.approx(0.7)


def test_dense_rules_stay_dense_and_are_left_out_of_the_budget():
  s = get_sparsities(mlp_and_conv(), 0.9, 'erk', rules=(('^Conv_0/', 'dense'),))
  assert s['Conv_0']['kernel'] is None
  eps = 0.1 * 900 / (50 + 40)
  assert s['Dense_0']['kernel'] == pytest.approx(1 - eps / 12)


def test_fixed_sparsities_are_kept_and_left_out_of_the_budget():
  s = get_sparsities(mlp_and_conv(), 0.9, 'erk', rules=(('Dense_1', 0.25),))
  assert s['Dense_1']['kernel'] == 0.25
  eps = 0.1 * (288 + 600) / (18 + 50)
  assert s['Dense_0']['kernel'] == pytest.approx(1 - eps / 12)


def test_the_first_matching_rule_decides():
  s = get_sparsities(
      mlp_and_conv(),
      0.9,
      'uniform',
      rules=(('Dense_1', 0.5), ('Dense', 'dense')),
  )
  assert s['Dense_1']['kernel'] == 0.5
  assert s['Dense_0']['kernel'] is None
  assert s['Conv_0']['kernel'] == 0.9


def test_uniform_keeps_the_first_layer_dense_unless_a_rule_says_otherwise():
  uniform = get_sparsities(
      mlp_and_conv(), 0.8, 'uniform', first_layer='Conv_0/kernel'
  )
  assert uniform['Conv_0']['kernel'] is None
  assert uniform['Dense_0']['kernel'] == 0.8
  erk = get_sparsities(mlp_and_conv(), 0.8, 'erk', first_layer='Conv_0/kernel')
  assert erk['Conv_0']['kernel'] > 0
  ruled = get_sparsities(
      mlp_and_conv(),
      0.8,
      'uniform',
      first_layer='Conv_0/kernel',
      rules=(('^Conv_0/', 'distributed'),),
  )
  assert ruled['Conv_0']['kernel'] == 0.8


def test_accepts_shape_dtype_structs():
  shapes = jax.eval_shape(lambda: mlp_and_conv())
  assert get_sparsities(shapes, 0.9, 'erk') == get_sparsities(
      mlp_and_conv(), 0.9, 'erk'
  )


@pytest.mark.parametrize(
    'kwargs,name,message',
    [
        (dict(sparsity=1.0), 'sparsity', 'must be in'),
        (dict(sparsity=-0.1), 'sparsity', 'must be in'),
        (dict(sparsity=float('nan')), 'sparsity', 'must be in'),
        (dict(distribution='erk2'), 'distribution', 'must be one of'),
        (dict(erk_power_scale=float('nan')), 'erk_power_scale', '>= 0'),
        (
            dict(rules=(('NoSuchLayer', 'dense'),)),
            'layer_sparsity',
            "regex 'NoSuchLayer' matches no kernel",
        ),
        (dict(rules=(('bias', 0.5),)), 'layer_sparsity', 'matches no kernel'),
        (dict(rules='Conv_0'), 'layer_sparsity', 'pairs'),
        (dict(rules=('Conv_0',)), 'layer_sparsity', 'pair'),
        (
            dict(rules=(('Conv_0[', 'dense'),)),
            'layer_sparsity',
            'invalid regex',
        ),
        (
            dict(rules=(('Dense_0', 1.5),)),
            'layer_sparsity',
            "value of 'Dense_0' must be",
        ),
        (
            dict(rules=(('Dense_0', 'sparse'),)),
            'layer_sparsity',
            "value of 'Dense_0' must be",
        ),
    ],
)
def test_bad_input_names_the_argument(kwargs, name, message):
  args = dict(sparsity=0.9, distribution='erk')
  args.update(kwargs)
  with pytest.raises(checks.InvalidArgument, match=message) as info:
    get_sparsities(
        mlp_and_conv(), args.pop('sparsity'), args.pop('distribution'), **args
    )
  assert info.value.name == name


kernel_shapes = st.lists(
    st.one_of(
        st.tuples(st.integers(1, 40), st.integers(1, 40)),
        st.tuples(
            st.integers(1, 5),
            st.integers(1, 5),
            st.integers(1, 16),
            st.integers(1, 16),
        ),
    ),
    min_size=1,
    max_size=6,
)


@given(
    shapes=kernel_shapes,
    sparsity=st.floats(0.0, 0.99),
    distribution=st.sampled_from(distributions.DISTRIBUTIONS),
)
def test_total_nonzeros_match_the_target(shapes, sparsity, distribution):
  params = {f'layer_{i}': jnp.zeros(shape) for i, shape in enumerate(shapes)}
  s = get_sparsities(params, sparsity, distribution)
  sizes = {k: math.prod(v.shape) for k, v in params.items()}
  nonzeros = sum(round((1 - s[k]) * n) for k, n in sizes.items())
  target = (1 - sparsity) * sum(sizes.values())
  assert abs(nonzeros - target) <= len(shapes) / 2 + 1e-6
  assert all(0.0 <= v < 1.0 or v == 0.0 for v in s.values())
