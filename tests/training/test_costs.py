"""FLOPs accounting: counting by tracing, training formulas, CLI and table."""

import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rigl_jax import models
from rigl_jax.data import specs as dataset_specs
from rigl_jax.sparse import schedules
from rigl_jax.sparse.methods import pruning
from rigl_jax.training import build
from rigl_jax.training import config as run_config
from rigl_jax.training import costs as flops
from rigl_jax.training import flop_counting
from tests import fixtures


def _mnist_config(**overrides):
  return run_config.set_values(
      run_config.load(
          os.path.join(fixtures.REPO_ROOT, 'configs', 'mnist_lenet300.py')
      ),
      overrides,
  )


# ---------------------------------------------------------------------------
# Counting.


class SmallConvNet(nn.Module):
  """Strided conv, depthwise conv, BatchNorm, pointwise conv, dense head."""

  @nn.compact
  def __call__(self, x, train=False):
    # 8x8x3 -> 4x4x4: 64 outputs x 27 taps = 1728 MACs.
    x = nn.Conv(4, (3, 3), strides=2, name='strided')(x)
    # Depthwise: 64 outputs x 9 taps of one channel = 576 MACs.
    x = nn.Conv(4, (3, 3), feature_group_count=4, name='depthwise')(x)
    x = nn.BatchNorm(use_running_average=not train)(x)
    # 4x4x6 = 96 outputs x 4 inputs = 384 MACs.
    x = nn.Conv(6, (1, 1), name='pointwise')(x)
    # 5 outputs x 6 inputs = 30 MACs.
    return nn.Dense(5, name='head')(x.mean(axis=(1, 2)))


CONV_SPEC = dataset_specs.DatasetSpec(
    (8, 8, 3), np.float32, 5, 'classification'
)


def test_conv_net_dense_and_sparse_flops_by_hand():
  cost = flops.model_cost(SmallConvNet(), CONV_SPEC)
  assert cost.macs.by_param == {
      'strided/kernel': 1728,
      'depthwise/kernel': 576,
      'pointwise/kernel': 384,
      'head/kernel': 30,
  }
  assert cost.macs.unattributed == 0
  assert flops.inference_flops(cost, {}) == 2 * (1728 + 576 + 384 + 30)
  sparsities = {'strided/kernel': 0.5, 'pointwise/kernel': 0.75}
  assert flops.inference_flops(cost, sparsities) == pytest.approx(
      2 * (1728 * 0.5 + 576 + 384 * 0.25 + 30)
  )
  layers = {
      layer['path']: layer for layer in flops.layer_flops(cost, sparsities)
  }
  assert list(layers) == [
      'depthwise/kernel',
      'head/kernel',
      'pointwise/kernel',
      'strided/kernel',
  ]
  assert layers['strided/kernel']['shape'] == [3, 3, 3, 4]
  assert layers['strided/kernel']['sparsity'] == 0.5
  assert layers['strided/kernel']['flops'] == pytest.approx(1728.0)
  assert layers['depthwise/kernel']['shape'] == [3, 3, 1, 4]
  assert layers['depthwise/kernel']['dense_flops'] == 1152


def test_mlp_dense_and_sparse_flops_by_hand():
  config = _mnist_config()
  cost = flops.model_cost(
      models.create_model('lenet300_100', num_classes=10, width=1.0),
      dataset_specs.get_spec(config.dataset),
  )
  assert (
      flops.inference_flops(cost, {})
      == 2 * (784 * 300 + 300 * 100 + 100 * 10)
      == 532_400
  )
  sparse = {'Dense_0/kernel': 0.9, 'Dense_1/kernel': 0.5}
  assert flops.inference_flops(cost, sparse) == pytest.approx(
      2 * (784 * 300 * 0.1 + 300 * 100 * 0.5 + 100 * 10)
  )


class Sequence(nn.Module):
  """Embedding, recurrence, stacked scanned layers, tied readout."""

  @nn.compact
  def __call__(self, tokens):
    embed = nn.Embed(10, 4, name='embed')
    h = embed(tokens)  # A lookup: no FLOPs.
    h = nn.RNN(nn.SimpleCell(8, name='cell'), name='rnn')(h)
    h = nn.remat(nn.Dense)(4, name='proj')(h)
    stack = nn.scan(
        _ScannedDense,
        variable_axes={'params': 0},
        split_rngs={'params': True},
        length=3,
    )
    h, _ = stack(name='stack')(h, None)
    similarity = h @ jnp.swapaxes(h, -1, -2)  # Two activations: dense.
    return embed.attend(h), similarity


class _ScannedDense(nn.Module):

  @nn.compact
  def __call__(self, carry, _):
    return nn.Dense(4)(carry), None


def test_recurrence_scan_remat_embedding_and_activation_products():
  model = Sequence()
  tokens = jnp.zeros((1, 5), jnp.int32)
  params = jax.eval_shape(model.init, jax.random.PRNGKey(0), tokens)['params']
  counts = flop_counting.macs_by_param(
      lambda p, s, x: model.apply({'params': p}, x), params, None, tokens
  )
  assert counts.by_param == {
      'cell/i/kernel': 5 * 4 * 8,  # Every time step.
      'cell/h/kernel': 5 * 8 * 8,
      'proj/kernel': 5 * 8 * 4,
      'stack/Dense_0/kernel': 3 * 5 * 4 * 4,  # Scan length x one layer.
      'embed/embedding': 5 * 4 * 10,  # The tied readout counts.
  }
  assert counts.unattributed == 5 * 5 * 4


def test_while_loop_with_products_is_refused():
  def fn(params, state, x):
    del state
    return jax.lax.while_loop(
        lambda c: c.sum() < 10.0, lambda c: c @ params['w'], x
    )

  with pytest.raises(ValueError, match='while loop'):
    flop_counting.macs_by_param(
        fn, {'w': jnp.ones((2, 2))}, None, jnp.ones((1, 2))
    )


# ---------------------------------------------------------------------------
# Each method's training formula, through the report of a real config.


@pytest.mark.parametrize(
    'method',
    [
        'dense',
        'static',
        'snip',
        'set',
        'snfs',
        'rigl',
        'small_dense',
        'pruning',
    ],
)
def test_report_applies_each_method_formula(method):
  config = _mnist_config(
      method=method,
      num_train_steps=100,
      batch_size=2,
      **{
          'mask_update.end_step': 50,
          'mask_update.interval': 10,
          'pruning.begin_step': 10,
          'pruning.end_step': 50,
          'pruning.frequency': 20,
          'lr_schedule.boundaries': (60, 80),
      },
  )
  report = build.flops_report(config)
  f_d, f_s = report['dense_inference_flops'], report['inference_flops']
  assert report['dense_train_flops'] == 2 * 100 * 3 * f_d
  expected = {
      'dense': 100 * 3 * f_d,
      'small_dense': 100 * 3 * f_s,
      'static': 100 * 3 * f_s,
      'snip': 100 * 3 * f_s,
      'set': 100 * 3 * f_s,
      'snfs': 100 * (2 * f_s + f_d),
      'rigl': 50 * (30 * f_s + 2 * f_s + f_d) / 11 + 50 * 3 * f_s,
  }
  if method == 'pruning':
    # Dense through step 10, then pruned at 10, 30 and 50.
    method_obj = pruning.GradualPruning(schedules.PruningSchedule(10, 50, 20))
    layers = {layer['path']: layer for layer in report['layers']}

    def flops_at(step):
      return sum(
          layer['dense_flops']
          * (1.0 - method_obj.sparsities_after(step, {p: layer['sparsity']})[p])
          for p, layer in layers.items()
      )

    expected[method] = 3 * (
        11 * f_d + 20 * flops_at(10) + 20 * flops_at(30) + 49 * f_s
    )
  assert report['train_flops'] == pytest.approx(2 * expected[method])
  assert report['train_flops_ratio'] == pytest.approx(
      report['train_flops'] / report['dense_train_flops']
  )
  if method in ('dense', 'small_dense'):
    assert report['nonzero_params'] == report['params']
  else:
    assert 0.09 < f_s / f_d < 0.11  # ERK at 90%: every FLOP is a weight.


def test_multiplier_scales_training_but_not_the_baseline():
  one = build.flops_report(_mnist_config(method='static'))
  five = build.flops_report(
      _mnist_config(method='static', training_multiplier=5.0)
  )
  assert five['train_flops'] == pytest.approx(5 * one['train_flops'])
  assert five['dense_train_flops'] == one['dense_train_flops']
  assert five['train_flops_ratio'] == pytest.approx(
      5 * one['train_flops_ratio']
  )


def test_small_dense_is_narrower_and_measured_sparsities_override():
  small = build.flops_report(_mnist_config(method='small_dense'))
  assert small['width'] < 1.0
  assert small['inference_flops_ratio'] < 0.2
  measured = build.flops_report(
      _mnist_config(method='static'),
      layer_sparsities={'Dense_0/kernel': 0.5, 'Dense_1/kernel': 0.5},
  )
  assert measured['inference_flops'] == pytest.approx(
      2 * (0.5 * 784 * 300 + 0.5 * 300 * 100 + 100 * 10)
  )
  with pytest.raises(ValueError, match='Dense_9'):
    build.flops_report(
        _mnist_config(method='static'), layer_sparsities={'Dense_9/kernel': 0.5}
    )


def test_small_dense_matches_size_by_default_and_params_on_request():
  from rigl_jax.sparse import masks as masks_lib  # pylint: disable=g-import-not-at-top

  sparse = build.flops_report(_mnist_config(method='static'))
  by_size = build.flops_report(_mnist_config(method='small_dense'))
  by_params = build.flops_report(
      _mnist_config(method='small_dense', **{'small_dense.match': 'params'})
  )
  bits = masks_lib.BITS_PER_WEIGHT
  # The sparse model stores a mask bit per entry of its sparse kernels
  # (ERK keeps the last layer dense here).
  mask_bits = sum(
      np.prod(layer['shape'])
      for layer in sparse['layers']
      if layer['sparsity'] > 0
  )
  assert mask_bits == 784 * 300 + 300 * 100
  target = sparse['nonzero_params'] + mask_bits / bits
  assert by_params['width'] < by_size['width']
  assert abs(by_size['params'] - target) < abs(by_params['params'] - target)
  assert abs(by_params['params'] - sparse['nonzero_params']) <= 785 + 101
  assert by_size['size_bits'] == bits * by_size['params']
  assert sparse['size_bits'] == bits * sparse['nonzero_params'] + mask_bits
  with pytest.raises(run_config.ConfigError, match='small_dense.match'):
    build.build(
        _mnist_config(method='small_dense', **{'small_dense.match': 'bits'})
    )


def _imagenet(name, **overrides):
  return run_config.set_values(
      run_config.load(os.path.join(fixtures.REPO_ROOT, 'configs', name)),
      overrides,
  )


@pytest.mark.slow
@pytest.mark.parametrize(
    'name,sparsity,width,flops_ratio',
    [
        # Widths of the reference's counting notebooks. At 80% the paper's
        # Table 2 lists 0.20x, below the 0.22x of the notebook's own width.
        ('imagenet_resnet50.py', 0.8, 0.465, 0.22),
        ('imagenet_resnet50.py', 0.9, 0.34, 0.12),
        ('imagenet_mobilenet_v1.py', 0.75, 0.47, 0.23),
        ('imagenet_mobilenet_v1.py', 0.85, 0.353, 0.14),
        ('imagenet_mobilenet_v1.py', 0.9, 0.285, 0.09),
        ('imagenet_mobilenet_v1.py', 0.95, 0.204, 0.05),
    ],
)
def test_small_dense_widths_of_the_paper(name, sparsity, width, flops_ratio):
  report = build.flops_report(
      _imagenet(
          name, method='small_dense', sparsity=sparsity, distribution='erk'
      )
  )
  assert report['width'] == pytest.approx(width, abs=0.006)
  assert report['inference_flops_ratio'] == pytest.approx(
      flops_ratio, abs=0.006
  )


@pytest.mark.slow
@pytest.mark.parametrize(
    # The paper's 1.91x ERK counts the width-1 model's per-layer sparsities
    # (its notebook); the wider model trains, as in the reference code, with
    # ERK of its own layers.
    'distribution,ratio',
    [('uniform', 0.98), ('erk', 1.83)],
)
def test_big_sparse_compares_with_the_width_one_dense_model(
    distribution, ratio
):
  overrides = {
      'method': 'rigl',
      'sparsity': 0.75,
      'distribution': distribution,
      'model.width': 1.98,
      'layer_sparsity': (('^stem/', 'dense'),),
  }
  own = build.flops_report(_imagenet('imagenet_mobilenet_v1.py', **overrides))
  big = build.flops_report(
      _imagenet(
          'imagenet_mobilenet_v1.py',
          **overrides,
          **{'model.reference_width': 1.0},
      )
  )
  assert big['inference_flops_ratio'] == pytest.approx(ratio, abs=0.01)
  assert own['inference_flops_ratio'] < 0.6  # Against its own width.


# ---------------------------------------------------------------------------
# Paper architectures: dense FLOPs at 224x224 (tracing only, no compilation).

IMAGENET_SPEC = dataset_specs.DatasetSpec(
    (224, 224, 3), np.float32, 1000, 'classification'
)


@pytest.mark.parametrize(
    'name,expected', [('resnet50', 8.2e9), ('mobilenet_v1', 1.14e9)]
)
def test_imagenet_models_dense_flops(name, expected):
  model = models.create_model(name, num_classes=1000, width=1.0)
  dense = flops.inference_flops(flops.model_cost(model, IMAGENET_SPEC), {})
  assert dense == pytest.approx(expected, rel=0.02)


# ---------------------------------------------------------------------------
# Command lines.

_BLOCK_TENSORFLOW = """
import runpy, sys
sys.modules['tensorflow'] = None  # Any import of TensorFlow now fails.
sys.argv = ['scripts/costs.py'] + sys.argv[1:]
runpy.run_path('scripts/costs.py', run_name='__main__')
"""


def _run(args):
  return subprocess.run(
      [sys.executable] + args,
      cwd=fixtures.REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=300,
      check=False,
      env={**os.environ, 'JAX_PLATFORMS': 'cpu'},
  )


def test_cli_prints_json_without_tensorflow():
  result = _run(
      [
          '-c',
          _BLOCK_TENSORFLOW,
          '--config=configs/mnist_lenet300.py',
          '--config.method=dense',
      ]
  )
  assert result.returncode == 0, result.stderr
  report = json.loads(result.stdout)
  for key in (
      'params',
      'nonzero_params',
      'dense_inference_flops',
      'inference_flops',
      'inference_flops_ratio',
      'train_flops',
      'train_flops_ratio',
      'layers',
  ):
    assert key in report
  assert (
      report['dense_inference_flops'] == report['inference_flops'] == (532_400)
  )
  assert report['train_flops_ratio'] == 1.0
  assert [layer['path'] for layer in report['layers']] == [
      'Dense_0/kernel',
      'Dense_1/kernel',
      'Dense_2/kernel',
  ]


def test_cli_bad_config_is_one_line():
  result = _run(
      [
          '-c',
          _BLOCK_TENSORFLOW,
          '--config=configs/mnist_lenet300.py',
          '--config.method=small_dense',
          '--config.small_dense.match=bits',
      ]
  )
  assert result.returncode == 1
  assert not result.stdout
  assert result.stderr.startswith('costs: ConfigError: ')
  assert 'small_dense.match' in result.stderr
  assert len(result.stderr.strip().splitlines()) == 1


def test_table_layout(tmp_path):
  results = tmp_path / 'results.json'
  results.write_text(
      json.dumps(
          {
              'config': {
                  'method': 'rigl',
                  'sparsity': 0.9,
                  'distribution': 'erk',
                  'training_multiplier': 1.0,
              },
              'eval': {'accuracy': 0.9833},
          }
      )
  )
  result = _run(
      [
          'scripts/flops_table.py',
          '--config=configs/mnist_lenet300.py',
          '--methods=dense,rigl',
          '--sparsities=0.8,0.9',
          f'--results={results}',
      ]
  )
  assert result.returncode == 0, result.stderr
  lines = result.stdout.strip().splitlines()
  assert lines[0] == (
      '| Method | Top-1 accuracy (%) @ 0.8 | '
      'FLOPs (Train) @ 0.8 | FLOPs (Test) @ 0.8 | '
      'Top-1 accuracy (%) @ 0.9 | FLOPs (Train) @ 0.9 | '
      'FLOPs (Test) @ 0.9 |'
  )
  assert lines[1] == '|:---|---:|---:|---:|---:|---:|---:|'
  labels = [line.split(' | ')[0][2:] for line in lines[2:8]]
  assert labels == [
      'Dense',
      'Dense 5x',
      'RigL (uniform)',
      'RigL 5x (uniform)',
      'RigL (ERK)',
      'RigL 5x (ERK)',
  ]
  assert lines[2] == ('| Dense | - | 1.00x | 1.00x | - | 1.00x | 1.00x |')
  assert lines[3].startswith('| Dense 5x | - | 5.00x | 1.00x |')
  assert lines[6] == (
      '| RigL (ERK) | - | 0.20x | 0.20x | 98.33 (n=1) | 0.10x | 0.10x |'
  )
  assert lines[-1].startswith('Dense (1x): 1.92e+12 training FLOPs')


def test_a_table_traces_each_model_once_and_each_pruning_step_once():
  """Cells of one config share the model's traced shapes (no compilation)
  and the pruning schedule's values: a table of many cells costs about one
  trace per width."""
  from rigl_jax import reports  # pylint: disable=g-import-not-at-top

  # A width no other test traces: this table's trace is a cache miss.
  config = _mnist_config(**{'model.width': 0.7731})
  traces = build._cached_trace_variables.cache_info().misses  # pylint: disable=protected-access
  schedule_values = schedules._remaining_at.cache_info()  # pylint: disable=protected-access
  table = reports.flops_table(
      config, ['dense', 'rigl', 'pruning'], [0.8, 0.9], ['uniform', 'erk'], [1]
  )
  assert len(table) == 5
  # One model: every method trains it at the config's width.
  assert build._cached_trace_variables.cache_info().misses == traces + 1  # pylint: disable=protected-access
  after = schedules._remaining_at.cache_info()  # pylint: disable=protected-access
  # Four pruning cells, each reported twice (build checks the report),
  # read one pruning schedule's values: computed once, read seven more times.
  new_values = after.misses - schedule_values.misses
  assert new_values > 0
  assert after.hits - schedule_values.hits == 7 * new_values
