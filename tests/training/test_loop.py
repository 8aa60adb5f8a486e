"""End-to-end runs of the MNIST job: results, checkpoints, resume, CLI."""

import json
import logging
import os
import re
import shutil
import time

import jax
import numpy as np
import pytest

from rigl_jax.training import loop
from rigl_jax.training import provenance as training_provenance
from rigl_jax.data import device_feed
from tests import fixtures


def assert_trees_equal(a, b):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_run_writes_results_and_resumes_from_the_saved_step(
    tmp_path, mnist_dir
):
  workdir = str(tmp_path / 'run')
  config = fixtures.tiny_mnist_config(mnist_dir)
  results = loop.train_and_evaluate(config, workdir)

  with open(os.path.join(workdir, 'results.json')) as f:
    saved = json.load(f)
  assert saved['num_train_steps'] == 12 == saved['steps_this_run']
  assert saved['config']['method'] == 'rigl'
  assert 0.0 <= saved['eval']['accuracy'] <= 1.0
  assert saved['eval']['loss'] > 0
  assert saved['sparsity']['overall'] == pytest.approx(0.9, abs=1e-3)
  assert set(saved['sparsity']['layers']) == {
      'Dense_0/kernel',
      'Dense_1/kernel',
      'Dense_2/kernel',
  }
  assert saved['topology'] == {
      'method': 'rigl',
      'updates': 3,
      'exploration_rate': pytest.approx(saved['topology']['exploration_rate']),
  }
  assert saved['topology']['exploration_rate'] > 0.1
  for key in (
      'wall_time_s',
      'train_time_s',
      'steps_per_second',
      'nonzero_params',
      'num_params',
  ):
    assert saved[key] > 0
  flops = saved['flops']
  assert flops['dense_inference_flops'] == 2 * (
      784 * 300 + 300 * 100 + 100 * 10
  )
  assert flops['inference_flops_ratio'] == pytest.approx(
      sum(layer['flops'] for layer in flops['layers'])
      / flops['dense_inference_flops']
  )
  assert 0.09 < flops['inference_flops_ratio'] < 0.12
  assert flops['nonzero_params'] == saved['nonzero_params']
  assert {'train_flops', 'train_flops_ratio', 'params'} <= set(flops)
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['12', '6']
  assert any(
      name.startswith('events.out.tfevents') for name in os.listdir(workdir)
  )
  final = fixtures.load_checkpoint(workdir, 12)

  # A finished run is reported, not run again; results.json stays as it is.
  results_path = os.path.join(workdir, 'results.json')
  with open(results_path) as f:
    written = f.read()
  again = loop.train_and_evaluate(config, workdir)
  assert again['steps_per_second'] == results['steps_per_second']
  with open(results_path) as f:
    assert f.read() == written

  # Killed before its last checkpoint and results.json: the same command
  # resumes at step 6 and ends exactly where the uninterrupted run ended.
  shutil.rmtree(os.path.join(workdir, 'checkpoints', '12'))
  os.remove(results_path)
  resumed = loop.train_and_evaluate(config, workdir)
  assert resumed['steps_this_run'] == 6
  assert resumed['eval'] == results['eval']
  assert_trees_equal(fixtures.load_checkpoint(workdir, 12), final)


def test_run_on_tfds_mock_data(tmp_path, mnist_dir):
  tfds = pytest.importorskip('tensorflow_datasets')
  config = fixtures.tiny_mnist_config(
      mnist_dir, num_train_steps=4, eval_every_steps=4
  )
  config.dataset.local_dir = ''
  config.mask_update.end_step = 4
  with tfds.testing.mock_data(num_examples=64):
    results = loop.train_and_evaluate(config, str(tmp_path))
  assert results['steps_this_run'] == 4
  assert results['topology']['updates'] == 2
  assert np.isfinite(results['eval']['loss'])


@pytest.mark.slow
def test_command_line_overrides_reach_the_run(tmp_path, mnist_dir):
  overrides = {
      **fixtures.tiny_mnist_overrides(mnist_dir),
      'method': 'set',
      'sparsity': 0.95,
  }
  process = fixtures.run_main(str(tmp_path / 'cli'), overrides)
  assert process.returncode == 0, process.stderr[-3000:]
  with open(tmp_path / 'cli' / 'results.json') as f:
    cli = json.load(f)
  assert cli['topology']['method'] == 'set'
  assert cli['sparsity']['overall'] == pytest.approx(0.95, abs=1e-3)
  # The same run in-process gives the same numbers; RigL's differ.
  set_run = loop.train_and_evaluate(
      fixtures.tiny_mnist_config(mnist_dir, method='set', sparsity=0.95),
      str(tmp_path / 'set'),
  )
  rigl_run = loop.train_and_evaluate(
      fixtures.tiny_mnist_config(mnist_dir, sparsity=0.95),
      str(tmp_path / 'rigl'),
  )
  assert cli['eval'] == set_run['eval']
  assert rigl_run['eval'] != set_run['eval']


@pytest.mark.parametrize(
    'method',
    [
        m
        if m in ('small_dense', 'pruning')
        else pytest.param(m, marks=pytest.mark.slow)
        for m in ('dense', 'small_dense', 'static', 'snip', 'snfs', 'pruning')
    ],
)
def test_every_method_runs_end_to_end(tmp_path, mnist_dir, method):
  results = loop.train_and_evaluate(
      fixtures.tiny_mnist_config(
          mnist_dir, method=method, num_train_steps=9, eval_every_steps=9
      ),
      str(tmp_path),
  )
  assert results['topology']['method'] == method
  assert np.isfinite(results['eval']['loss'])
  if method in ('dense', 'small_dense'):
    assert results['sparsity']['overall'] == 0.0
    assert results['nonzero_params'] == results['num_params']
  else:
    assert results['sparsity']['overall'] == pytest.approx(0.9, abs=1e-3)
  if method == 'small_dense':
    assert results['width'] < 0.2
    # Its size matches the sparse model's: ~27k nonzeros and a mask bit per
    # entry of its sparse kernels (265,200 bits, ~8.3k weights).
    assert abs(results['num_params'] - 35_300) < 1_000


def test_nothing_compiles_inside_the_training_loop(
    tmp_path, mnist_dir, monkeypatch
):
  compiles, steps = [], []
  listener = lambda name, *args, **kwargs: (
      compiles.append(time.monotonic()) if 'compile' in name else None
  )
  inputs = device_feed.Resident.inputs
  monkeypatch.setattr(
      device_feed.Resident,
      'inputs',
      lambda self, step: (steps.append(time.monotonic()), inputs(self, step))[
          1
      ],
  )
  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    loop.train_and_evaluate(
        fixtures.tiny_mnist_config(mnist_dir), str(tmp_path)
    )
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  assert len(steps) == 12
  assert any(t < steps[0] for t in compiles)  # The listener hears them.
  assert not [t for t in compiles if steps[0] < t < steps[-1]]


def test_events_hold_the_learning_rate_and_progress_is_logged(
    tmp_path, mnist_dir, caplog
):
  caplog.set_level(logging.INFO)
  loop.train_and_evaluate(fixtures.tiny_mnist_config(mnist_dir), str(tmp_path))
  scalars = fixtures.read_scalars(str(tmp_path))
  # Logged every 4 steps, the rate of the last step; x0.1 from step 8.
  assert scalars['train/learning_rate'] == pytest.approx(
      {4: 0.1, 8: 0.1, 12: 0.01}
  )
  assert set(scalars['train/loss']) == {4, 8, 12}
  assert set(scalars['eval/accuracy']) == {6, 12}
  assert {0, 3, 6} <= set(scalars['sparsity/Dense_0/kernel'])
  assert scalars['steps_per_second'][12] > 0
  assert any(
      re.fullmatch(
          r'step 12/12 \(100\.0%\), [\d.]+ steps/s, ' r'ETA 0:00:00',
          record.getMessage(),
      )
      for record in caplog.records
  )


def test_results_keep_the_history_and_provenance(tmp_path, mnist_dir):
  config = fixtures.tiny_mnist_config(mnist_dir, method='static')
  first = loop.train_and_evaluate(config, str(tmp_path))
  assert [e['step'] for e in first['history']['train']] == [4, 8, 12]
  assert [e['step'] for e in first['history']['eval']] == [6, 12]
  assert first['history']['eval'][-1]['accuracy'] == first['eval']['accuracy']
  provenance = first['provenance']
  assert provenance['versions']['jax'] == jax.__version__
  assert provenance['device_kind']
  assert provenance['host_cpu'] == training_provenance.host_cpu()
  assert provenance['host_cpu']  # Linux names its CPU model.
  assert provenance['platform'] == jax.devices()[0].platform
  longer = fixtures.tiny_mnist_config(
      mnist_dir, method='static', num_train_steps=18
  )
  second = loop.train_and_evaluate(longer, str(tmp_path))
  assert [e['step'] for e in second['history']['eval']] == [6, 12, 18]
  assert second['history']['train'][:3] == first['history']['train']


def test_a_state_with_non_finite_weights_is_never_saved():
  import types  # pylint: disable=g-import-not-at-top

  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from rigl_jax import errors  # pylint: disable=g-import-not-at-top
  from rigl_jax.training import steps  # pylint: disable=g-import-not-at-top

  class Checkpointer:
    directory = '/runs/x/checkpoints'

    def wait_until_finished(self):
      pass

    def all_steps(self):
      return [4]

  metrics = steps.TrainMetrics.empty()  # Every step's loss was finite.
  good = types.SimpleNamespace(params={'w': jnp.ones(3)}, opt_state=())
  loop._check_finite(metrics, Checkpointer(), good, 8)  # pylint: disable=protected-access
  bad = types.SimpleNamespace(
      params={'w': jnp.array([1.0, jnp.inf, 0.0])}, opt_state=()
  )
  with pytest.raises(errors.DivergenceError) as info:
    loop._check_finite(metrics, Checkpointer(), bad, 8)  # pylint: disable=protected-access
  assert 'non-finite at step 8' in str(info.value)
  assert 'last checkpoint (step 4)' in str(info.value)
