"""Data parallelism: 8 host CPU devices train like one device."""

import json
import os

import jax
import numpy as np
import pytest

from tests import fixtures

# Several devices here are host CPU devices (XLA_FLAGS); an accelerator
# machine gives its own count.
pytestmark = pytest.mark.cpu_only


def run_on(devices, workdir, overrides):
  env = {
      'XLA_FLAGS': os.environ['XLA_FLAGS']
      + f' --xla_force_host_platform_device_count={devices}'
  }
  process = fixtures.run_main(workdir, overrides, env=env)
  assert process.returncode == 0, process.stderr[-3000:]
  with open(f'{workdir}/results.json') as f:
    results = json.load(f)
  assert results['num_devices'] == devices
  return results, fixtures.load_checkpoint(workdir, 12)


@pytest.mark.slow
@pytest.mark.parametrize('method', ['rigl', 'set'])
def test_eight_devices_match_one(tmp_path, mnist_dir, method):
  overrides = {**fixtures.tiny_mnist_overrides(mnist_dir), 'method': method}
  one, one_state = run_on(1, str(tmp_path / 'one'), overrides)
  eight, eight_state = run_on(8, str(tmp_path / 'eight'), overrides)

  assert eight['eval']['loss'] == pytest.approx(one['eval']['loss'], rel=1e-4)
  assert eight['eval']['accuracy'] == pytest.approx(
      one['eval']['accuracy'], abs=1 / 200
  )
  for a, b in zip(
      jax.tree.leaves(one_state['masks']), jax.tree.leaves(eight_state['masks'])
  ):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(
      jax.tree.leaves(one_state['params']),
      jax.tree.leaves(eight_state['params']),
  ):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_batch_not_divisible_by_devices_is_a_clear_error(tmp_path, mnist_dir):
  overrides = {**fixtures.tiny_mnist_overrides(mnist_dir), 'batch_size': 36}
  process = fixtures.run_main(
      str(tmp_path),
      overrides,
      env={
          'XLA_FLAGS': os.environ['XLA_FLAGS']
          + ' --xla_force_host_platform_device_count=8'
      },
  )
  assert process.returncode != 0
  assert (
      'config.batch_size: 36 is not divisible by the number of devices ' '(8)'
  ) in process.stderr


@pytest.mark.slow
def test_two_devices_run_many_steps_between_host_syncs(tmp_path, mnist_dir):
  """Thousands of steps per log interval: the loop bounds what it queues.

  Unbounded dispatch queued a whole log interval of steps, and XLA:CPU's
  all-reduce on host devices timed out behind the queue.
  """
  overrides = {
      **fixtures.tiny_mnist_overrides(mnist_dir),
      'num_train_steps': 3000,
      'log_every_steps': 1500,
      'eval_every_steps': 3000,
      'checkpoint_every_steps': 3000,
      'mask_update.end_step': 2000,
  }
  env = {
      'XLA_FLAGS': os.environ['XLA_FLAGS']
      + ' --xla_force_host_platform_device_count=2'
  }
  # The deadlock this guards against aborts within a minute (XLA's 40 s
  # rendezvous timeout); the run itself took 250 s alone on a slow 2-core
  # machine, and more beside another test.
  process = fixtures.run_main(
      str(tmp_path), {**overrides, 'method': 'rigl'}, env=env, timeout=900
  )
  assert process.returncode == 0, process.stderr[-3000:]
  with open(tmp_path / 'results.json') as f:
    results = json.load(f)
  assert results['num_devices'] == 2
  assert results['steps_this_run'] == 3000
