"""Chase: channel removal by UMM under RigL updates, on hand-worked examples."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rigl_jax import TrainState
from rigl_jax.sparse import flops
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import methods
from rigl_jax.sparse import schedules
from rigl_jax.sparse.methods import chase
from rigl_jax.training import config as run_config
from tests import fixtures


def make_chase(
    interval=10,
    fraction=0.0,
    channel_sparsity=0.5,
    channel_interval=10,
    channel_end_step=2,
    min_channel_ratio=0.5,
    channel_layers=None,
    output_layer='',
):
  return chase.Chase(
      interval=interval,
      drop_fraction=schedules.DropFraction('constant', fraction, 100),
      channel_sparsity=channel_sparsity,
      channel_interval=channel_interval,
      channel_end_step=channel_end_step,
      min_channel_ratio=min_channel_ratio,
      channel_layers=channel_layers,
  ).for_model(output_layer)


def update(method, step, params, grads, masks):
  as_jax = lambda tree: jax.tree.map(jnp.asarray, tree)
  new = method.update_masks(
      jax.random.key(0),
      jnp.asarray(step, jnp.int32),
      as_jax(params),
      as_jax(grads),
      as_jax(masks),
      {},
  )
  return jax.tree.map(np.asarray, new)


# Layer 'a': 4 inputs (rows) x 4 channels (columns), 6 active weights.
# Channel 0: rows 0, 1 (0.9, -0.8), UMM 1.7 / 4 = 0.425; channel 1: row 0
# (0.3), UMM 0.075; channel 2: rows 0-2 (0.5, -0.4, 0.6), UMM 0.375;
# channel 3: nothing active, already removed.
A_WEIGHTS = np.float32(
    [
        [0.9, 0.3, 0.5, 0.0],
        [-0.8, 0.0, -0.4, 0.0],
        [0.0, 0.0, 0.6, 0.0],
        [0.0, 0.0, 0.0, 0.0],
    ]
)
A_MASK = A_WEIGHTS != 0
A_GRADS = np.float32(
    [
        [0.0, 0.0, 0.0, 9.0],  # (0, 3): a removed channel, never grown.
        [0.0, 5.0, 0.0, 0.0],  # (1, 1): the channel removed now.
        [0.2, 0.0, 0.0, 0.0],
        [0.1, 0.0, 0.7, 0.0],
    ]
)
# Layer 'b', the output layer: 4 inputs x 2 classes, 4 active.
B_WEIGHTS = np.float32([[0.1, 0.0], [0.0, 0.2], [0.3, 0.0], [0.0, 0.01]])
B_MASK = B_WEIGHTS != 0


def test_a_removal_takes_the_lowest_umm_channel_and_regrows_its_weights():
  """Worked by hand.

  At t_c = 2, s_c(2) = 0.5: floor(0.5 * 4) = 2 of layer a's channels go;
  channel 3 is empty, so one more. The layer keeps max(int(4 * 0.5 *
  0.5), ceil(6 / 4)) = 2 channels, so one of its 3 live channels may go:
  channel 1, the smallest UMM (0.075 < 0.375 < 0.425). Its one weight is
  regrown by |g| among the free entries of channels 0 and 2: (2, 0) 0.2,
  (3, 0) 0.1, (3, 2) 0.7 -> (3, 2); (1, 1) 5.0 and (0, 3) 9.0 lie in
  removed channels. The output layer b keeps every channel.
  """
  method = make_chase(output_layer='b/kernel')
  assert method.is_update_step(2) and not method.is_weight_step(2)
  params = {'a': {'kernel': A_WEIGHTS}, 'b': {'kernel': B_WEIGHTS}}
  grads = {'a': {'kernel': A_GRADS}, 'b': {'kernel': np.ones((4, 2))}}
  masks = {'a': {'kernel': A_MASK}, 'b': {'kernel': B_MASK}}
  new = update(method, 2, params, grads, masks)
  expected = np.zeros((4, 4), bool)
  expected[[0, 1], 0] = True
  expected[[0, 1, 2, 3], 2] = True
  np.testing.assert_array_equal(new['a']['kernel'], expected)
  np.testing.assert_array_equal(new['b']['kernel'], B_MASK)
  assert masks_lib.channel_sparsities(new) == {
      'overall': 2 / 6,
      'layers': {'a/kernel': 0.5, 'b/kernel': 0.0},
  }
  assert masks_lib.overall_sparsity(new) == masks_lib.overall_sparsity(masks)


def test_channels_go_by_umm_across_layers_down_to_each_layer_floor():
  """Worked by hand.

  Two channel layers, 6 channels: s_c = 0.5 at t_c removes 3. UMMs: a
  (0.2, 0.4, 0.6, 0.8) / 2 = 0.1, 0.2, 0.3, 0.4; b (0.1, 0.12) / 2 =
  0.05, 0.06. With β = 1 layer a keeps int(4 * 0.5) = 2, b int(2 * 0.5) =
  1. The 3 smallest are b0, b1, a0, but b may lose one only: b0, then a0,
  a1. Each layer regrows what it lost in its channels left: a's 2 weights
  fill row 1 of channels 2 and 3, b's one weight row 1 of channel 1.
  """
  method = make_chase(min_channel_ratio=1.0, channel_layers=('.',))
  a = np.float32([[0.2, 0.4, 0.6, 0.8], [0.0, 0.0, 0.0, 0.0]])
  b = np.float32([[0.1, 0.12], [0.0, 0.0]])
  params = {'a': a, 'b': b}
  masks = {'a': a != 0, 'b': b != 0}
  grads = {'a': np.ones((2, 4), np.float32), 'b': np.ones((2, 2), np.float32)}
  new = update(method, 2, params, grads, masks)
  np.testing.assert_array_equal(
      new['a'], [[False, False, True, True], [False, False, True, True]]
  )
  np.testing.assert_array_equal(new['b'], [[False, True], [False, True]])


def test_a_weight_update_drops_by_magnitude_and_grows_in_live_channels():
  """Worked by hand: at t = ΔT = 10 (no channel step), r = 0.5.

  floor(0.5 * 6) = 3 of layer a's weights go: |w| 0.3, 0.4, 0.5 (entries
  (0, 1), (1, 2), (0, 2)); 3 grow by |g| among the entries not kept, in
  the live channels 0-2: (1, 1) 5.0, (3, 2) 0.7, (2, 0) 0.2. Channel 3's
  (0, 3), 9.0, stays removed.
  """
  method = make_chase(fraction=0.5, channel_end_step=5, channel_interval=100)
  assert method.is_weight_step(10) and not method.is_channel_step(10)
  new = update(method, 10, {'a': A_WEIGHTS}, {'a': A_GRADS}, {'a': A_MASK})
  expected = np.zeros((4, 4), bool)
  expected[[0, 1, 2], 0] = True
  expected[[1], 1] = True
  expected[[2, 3], 2] = True
  np.testing.assert_array_equal(new['a'], expected)


def test_schedule_update_steps_and_training_flops():
  """ΔT_p = 4, ΔT_c = 6, t_c = 15.

  Weight updates at 4, 8, 12, 16; channel removals where (t + 2) % 6 == 0
  up to t_c: 4, 10, and t_c = 15. Over 20 steps, 6 update steps, each
  adding f_D - f_S to 3 f_S per step: 20 * 30 + 6 * 90.
  """
  method = make_chase(interval=4, channel_interval=6, channel_end_step=15)
  assert [t for t in range(20) if method.is_update_step(t)] == [
      4, 8, 10, 12, 15, 16
  ]  # fmt: skip
  assert [t for t in range(20) if method.is_channel_step(t)] == [4, 10, 15]
  assert method.num_update_steps(20) == 6
  # s_c(10) = 0.5 (1 - (1 - 10 / 15) ** 3) = 0.5 * 26 / 27.
  assert float(method.removed_fraction(10)) == pytest.approx(13 / 27)
  assert float(method.removed_fraction(17)) == pytest.approx(0.5)
  costs = flops.RunCosts(
      num_steps=20,
      dense_flops=100.0,
      sparse_flops=10.0,
      sparsities={'w': 0.9},
      flops_at=lambda s: 100.0 * (1.0 - s['w']),
  )
  assert method.train_flops(costs) == pytest.approx(20 * 30 + 6 * 90)


def test_training_keeps_each_layer_count_and_reaches_the_channel_target():
  # s_c = 0.5 of layer a's 30 channels: 15 go; its floor is
  # max(int(30 * 0.5 * 0.5), ceil(120 / 20)) = 7. b is the output layer.
  method = make_chase(
      interval=3,
      fraction=0.3,
      channel_interval=4,
      channel_end_step=12,
      output_layer='b',
  )
  params = {
      'a': jax.random.normal(jax.random.key(0), (20, 30)),
      'b': jax.random.normal(jax.random.key(1), (30, 5)),
  }
  state = TrainState.create(
      params=params,
      tx=optax.sgd(0.1, momentum=0.9),
      method=method,
      sparsities={'a': 0.8, 'b': 0.5},
      rng=jax.random.key(2),
  )
  step_fn = jax.jit(lambda s, g: s.apply_gradients(grads=g))
  removed = []
  for t in range(16):
    grads = jax.tree.map(
        lambda p, t=t: jax.random.normal(jax.random.key(100 + t), p.shape),
        params,
    )
    state = step_fn(state, grads)
    masks = jax.device_get(state.masks)
    assert int(masks['a'].sum()) == 120 and int(masks['b'].sum()) == 75, t
    channels = masks_lib.channel_sparsities(masks)['layers']
    assert channels['b'] == 0.0
    removed.append(round(channels['a'] * 30))
    weights = np.asarray(state.params['a'])
    assert not weights[:, ~masks['a'].any(axis=0)].any()
  assert removed == sorted(removed) and removed[-1] == 15


@pytest.mark.parametrize('kind', ['n_m', 'fan_in'])
def test_a_mask_structure_is_refused_in_one_line(kind):
  config = run_config.base_config()
  config.method = 'chase'
  config.mask_structure.kind = kind
  with pytest.raises(
      run_config.ConfigError,
      match=rf'^config\.mask_structure\.kind: chase removes whole output '
      rf'channels, which {kind} masks cannot hold',
  ) as error:
    with run_config.as_config_errors():
      methods.from_config(config)
  assert '\n' not in str(error.value)


@pytest.mark.parametrize(
    'key,value,message',
    [
        ('channel_sparsity', 1.0, r'must be in \[0, 1\), got 1.0'),
        ('drop_fraction', 1.5, r'must be in \[0, 1\], got 1.5'),
        ('interval', 0, 'must be a positive integer, got 0'),
        ('channel_end', 0.0001, 'ends channel removal before step 1'),
    ],
)
def test_a_bad_value_is_a_one_line_error_naming_its_key(key, value, message):
  error = fixtures.method_config_error('chase', key, value)
  assert re.match(rf'^config\.chase\.{key}: .*{message}', error), error


@pytest.mark.slow
def test_trains_from_the_command_line(tmp_path, mnist_dir):
  results = fixtures.train_method_from_command_line(
      str(tmp_path / 'run'), mnist_dir, 'chase'
  )
  assert methods.display_name('chase') == 'Chase'
  assert results['sparsity']['overall'] == pytest.approx(0.9, abs=0.01)
  # s_c = 0.5 of Dense_0's 300 and Dense_1's 100 units by the last step.
  channels = results['sparsity']['channels']
  assert channels['layers']['Dense_2/kernel'] == 0.0
  assert channels['overall'] == pytest.approx(200 / 410)
  ratio = results['flops']['train_flops_ratio']
  assert results['flops']['inference_flops_ratio'] < ratio < 1.0
