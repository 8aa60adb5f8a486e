"""Preemption-safe runs, clear errors for bad input, divergence guards."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from rigl_jax import data
from rigl_jax import errors
from rigl_jax.training import loop
from tests import fixtures


def fail_if_called(what):
  def fail(*args, **kwargs):
    raise AssertionError(f'{what} ran before the config was validated')

  return fail


BAD_VALUES = [
    ({'sparsity': 1.0}, 'config.sparsity'),
    ({'sparsity': -0.1}, 'config.sparsity'),
    ({'method': 'lottery'}, 'config.method'),
    ({'distribution': 'erx'}, 'config.distribution'),
    ({'model.name': 'vgg'}, 'config.model.name'),
    ({'dataset.name': 'svhn'}, 'config.dataset.name'),
    ({'mask_update.schedule': 'linear'}, 'config.mask_update.schedule'),
    ({'mask_update.interval': 0}, 'config.mask_update.interval'),
    ({'mask_update.drop_fraction': -0.1}, 'config.mask_update.drop_fraction'),
    ({'mask_update.drop_fraction': 1.5}, 'config.mask_update.drop_fraction'),
    ({'mask_update.end_step': 100}, 'config.mask_update.end_step'),
    ({'method': 'pruning', 'pruning.end_step': 100}, 'config.pruning.end_step'),
    ({'model.width': 0.0}, 'config.model.width'),
    ({'method': 'static', 'sparsity': 0.0}, 'config.sparsity'),
    ({'layer_sparsity': (('NoSuchLayer', 'dense'),)}, 'config.layer_sparsity'),
    ({'layer_sparsity': (('.*', 'dense'),)}, 'config.layer_sparsity'),
    (
        {'optimizer.learning_rate': float('inf')},
        'config.optimizer.learning_rate',
    ),
    ({'optimizer.learning_rate': 1e39}, 'config.optimizer.learning_rate'),
    ({'optimizer.l2': float('nan')}, 'config.optimizer.l2'),
    ({'mask_update.power': float('nan')}, 'config.mask_update.power'),
    ({'sparsity': 0.99999}, 'config.sparsity'),
    (
        {
            'dataset.device_resident': True,
            'dataset.name': 'imagenet2012',
            'model.name': 'resnet50',
        },
        'config.dataset.device_resident',
    ),
    ({'lr_schedule.name': 'step'}, 'config.lr_schedule.name'),
    # Once a hang in the ERK solver, tracebacks or a run of 1e300 steps.
    ({'erk_power_scale': float('nan')}, 'config.erk_power_scale'),
    ({'erk_power_scale': float('inf')}, 'config.erk_power_scale'),
    ({'erk_power_scale': 1000.0}, 'config.erk_power_scale'),
    ({'training_multiplier': float('nan')}, 'config.training_multiplier'),
    ({'training_multiplier': float('inf')}, 'config.training_multiplier'),
    ({'training_multiplier': 1e300}, 'config.training_multiplier'),
    ({'num_train_steps': 2**31}, 'config.num_train_steps'),
    (
        {'method': 'pruning', 'pruning.initial_sparsity': 1.5},
        'config.pruning.initial_sparsity',
    ),
    ({'lr_schedule.decay_factor': -1.0}, 'config.lr_schedule.decay_factor'),
]


@pytest.mark.parametrize(
    'overrides,key', BAD_VALUES, ids=[str(o) for o, _ in BAD_VALUES]
)
def test_bad_config_fails_before_data_and_compilation(
    tmp_path, mnist_dir, monkeypatch, overrides, key
):
  monkeypatch.setattr(jax, 'jit', fail_if_called('jax.jit'))
  monkeypatch.setattr(
      data, 'create_pipeline', fail_if_called('data.create_pipeline')
  )
  config = fixtures.tiny_mnist_config(mnist_dir, **overrides)
  with pytest.raises(errors.ConfigError) as info:
    loop.train_and_evaluate(config, str(tmp_path))
  assert str(info.value).startswith(key)


def last_line(text):
  return text.strip().splitlines()[-1]


@pytest.mark.slow
def test_cli_errors_are_one_line_at_the_end_with_a_nonzero_exit(
    tmp_path, mnist_dir
):
  overrides = {
      **fixtures.tiny_mnist_overrides(mnist_dir),
      'mask_update.drop_fraction': 1.5,
  }
  process = fixtures.run_main(str(tmp_path), overrides)
  assert process.returncode == 1
  assert last_line(process.stderr).startswith(
      'rigl_jax: ConfigError: config.mask_update.drop_fraction: must be in '
      '[0, 1], got 1.5'
  )


@pytest.mark.parametrize(
    'damage,expected',
    [
        ('missing', 'train-labels-idx1-ubyte.gz: file not found'),
        ('truncated', 'train-labels-idx1-ubyte.gz: cannot be read as gzip'),
    ],
)
def test_bad_data_files_are_named(tmp_path, mnist_dir, damage, expected):
  local = tmp_path / 'mnist'
  shutil.copytree(mnist_dir, local)
  target = local / 'train-labels-idx1-ubyte.gz'
  if damage == 'missing':
    target.unlink()
  else:
    target.write_bytes(target.read_bytes()[:40])
  overrides = {**fixtures.tiny_mnist_overrides(str(local))}
  process = fixtures.run_main(str(tmp_path / 'run'), overrides)
  assert process.returncode == 1
  line = last_line(process.stderr)
  assert line.startswith('rigl_jax: DataFileError: ')
  assert expected in line and str(local) in line


# A run long enough to be interrupted: about 400 steps with frequent
# checkpoints (under a second of training on 2 cores, after start-up).
LONG = {
    'num_train_steps': 400,
    'mask_update.end_step': 300,
    'mask_update.interval': 10,
    'lr_schedule.boundaries': (300,),
    'log_every_steps': 20,
    'eval_every_steps': 400,
    'checkpoint_every_steps': 20,
    'keep_checkpoints': 3,
    'model.width': 3.0,
    'batch_size': 64,
}


def final_state(workdir):
  with open(os.path.join(workdir, 'results.json')) as f:
    results = json.load(f)
  return results, fixtures.load_checkpoint(workdir, results['num_train_steps'])


def assert_same_run(a, b):
  (results_a, state_a), (results_b, state_b) = a, b
  assert results_a['eval'] == results_b['eval']
  assert results_a['sparsity'] == results_b['sparsity']
  leaves_a, leaves_b = jax.tree.leaves(state_a), jax.tree.leaves(state_b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(x, y)


def start_main(workdir, overrides):
  flags = [
      f'--config.{k}={v!r}' if isinstance(v, tuple) else f'--config.{k}={v}'
      for k, v in overrides.items()
  ]
  return subprocess.Popen(
      [
          sys.executable,
          '-m',
          'rigl_jax.main',
          '--config=configs/mnist_lenet300.py',
          f'--workdir={workdir}',
      ]
      + flags,
      cwd=fixtures.REPO_ROOT,
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
      text=True,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'},
  )


def wait_for_checkpoint(workdir, process, timeout=300):
  directory = os.path.join(workdir, 'checkpoints')
  deadline = time.time() + timeout
  while time.time() < deadline:
    if os.path.isdir(directory) and any(
        n.isdigit() for n in os.listdir(directory)
    ):
      return
    assert process.poll() is None, process.stderr.read()[-3000:]
    time.sleep(0.01)
  raise AssertionError('no checkpoint appeared')


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory, mnist_dir):
  workdir = str(tmp_path_factory.mktemp('uninterrupted'))
  loop.train_and_evaluate(
      fixtures.tiny_mnist_config(mnist_dir, **LONG), workdir
  )
  return final_state(workdir)


@pytest.mark.slow
def test_sigkill_at_a_random_step_then_resume_is_bit_identical(
    tmp_path, mnist_dir, uninterrupted
):
  overrides = {**fixtures.tiny_mnist_overrides(mnist_dir), **LONG}
  rng = random.Random(os.getpid())
  workdir = str(tmp_path)
  for delay in (rng.uniform(0.0, 0.4), 0.05, 0.0):
    process = start_main(workdir, overrides)
    wait_for_checkpoint(workdir, process)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    if not os.path.exists(os.path.join(workdir, 'results.json')):
      break  # Killed mid-run, as intended.
    shutil.rmtree(workdir)
    os.makedirs(workdir)
  assert not os.path.exists(os.path.join(workdir, 'results.json'))
  process = fixtures.run_main(workdir, overrides)
  assert process.returncode == 0, process.stderr[-3000:]
  resumed = final_state(workdir)
  assert resumed[0]['steps_this_run'] < 400
  assert_same_run(resumed, uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_writes_a_checkpoint_then_resume_is_bit_identical(
    tmp_path, mnist_dir, uninterrupted, signum
):
  overrides = {
      **fixtures.tiny_mnist_overrides(mnist_dir),
      **LONG,
      'checkpoint_every_steps': 400,
  }
  workdir = str(tmp_path)
  process = start_main(workdir, overrides)
  # The first log line of training means steps are running.
  deadline = time.time() + 300
  while not os.path.exists(workdir) or not any(
      n.startswith('events.out') for n in os.listdir(workdir)
  ):
    assert time.time() < deadline and process.poll() is None
    time.sleep(0.01)
  time.sleep(0.3)
  process.send_signal(signum)
  _, stderr = process.communicate(timeout=300)
  assert process.returncode == 75, stderr[-3000:]  # Preempted.
  line = last_line(stderr)
  assert line.startswith('rigl_jax: Preempted: preempted after step ')
  stopped_at = int(line.split('after step ')[1].split(':')[0])
  assert 0 < stopped_at < 400
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == [
      str(stopped_at)
  ]
  process = fixtures.run_main(workdir, overrides)
  assert process.returncode == 0, process.stderr[-3000:]
  resumed = final_state(workdir)
  assert resumed[0]['steps_this_run'] == 400 - stopped_at
  assert_same_run(resumed, uninterrupted)


@pytest.mark.slow
def test_half_written_and_unreadable_checkpoints_are_never_loaded(
    tmp_path, mnist_dir
):
  config = fixtures.tiny_mnist_config(
      mnist_dir, keep_checkpoints=3, checkpoint_every_steps=4
  )
  workdir = str(tmp_path)
  first = loop.train_and_evaluate(config, workdir)
  checkpoints = os.path.join(workdir, 'checkpoints')
  assert sorted(os.listdir(checkpoints), key=int) == ['4', '8', '12']
  # A save cut short by a kill leaves a temporary directory behind.
  shutil.rmtree(os.path.join(checkpoints, '12'))
  shutil.copytree(
      os.path.join(checkpoints, '8'),
      os.path.join(checkpoints, '12.orbax-checkpoint-tmp-1'),
  )
  # A listed checkpoint whose data cannot be read is skipped too.
  for root, _, files in os.walk(os.path.join(checkpoints, '8', 'state')):
    for name in files:
      with open(os.path.join(root, name), 'wb') as f:
        f.write(b'\0garbage')
  # As if killed before writing results.json (a finished run is not rerun).
  os.remove(os.path.join(workdir, 'results.json'))
  resumed = loop.train_and_evaluate(config, workdir)
  assert resumed['steps_this_run'] == 8  # From step 4.
  assert resumed['eval'] == first['eval']
  names = os.listdir(checkpoints)
  assert {'4', '8', '12'} <= set(names)
  assert any(n.startswith('8.unreadable-') for n in names)  # Kept aside.


@pytest.mark.parametrize(
    'change,key',
    [
        ({'method': 'set'}, 'config.method'),
        pytest.param(
            {'model.width': 2.0}, 'config.model.width', marks=pytest.mark.slow
        ),
        pytest.param(
            {'sparsity': 0.8}, 'config.sparsity', marks=pytest.mark.slow
        ),
    ],
)
def test_resuming_under_a_different_config_is_a_clear_error(
    tmp_path, mnist_dir, change, key
):
  workdir = str(tmp_path)
  loop.train_and_evaluate(fixtures.tiny_mnist_config(mnist_dir), workdir)
  with pytest.raises(errors.ResumeError) as info:
    loop.train_and_evaluate(
        fixtures.tiny_mnist_config(mnist_dir, **change), workdir
    )
  assert key in str(info.value) and workdir in str(info.value)


def test_divergence_stops_at_the_step_and_keeps_the_last_good_checkpoint(
    tmp_path, mnist_dir
):
  # The learning rate jumps by 1e30 at step 8: the next forward overflows.
  config = fixtures.tiny_mnist_config(
      mnist_dir,
      checkpoint_every_steps=4,
      log_every_steps=2,
      keep_checkpoints=5,
      **{'lr_schedule.boundaries': (8,), 'lr_schedule.decay_factor': 1e30},
  )
  workdir = str(tmp_path)
  with pytest.raises(errors.DivergenceError) as info:
    loop.train_and_evaluate(config, workdir)
  message = str(info.value)
  bad_step = int(message.split('non-finite at step ')[1].split(';')[0])
  assert 8 <= bad_step < 12
  assert 'the last checkpoint (step 8)' in message
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints')), key=int) == [
      '4',
      '8',
  ]
  state = fixtures.load_checkpoint(workdir, 8)
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state['params']))
