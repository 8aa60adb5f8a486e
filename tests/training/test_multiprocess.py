"""Several JAX processes on one machine: a multi-host run on localhost.

Each process is the real command line with ``--distributed``; JAX's CPU
collectives (gloo) carry the all-reduce between them.
"""

import glob
import json
import os
import subprocess

import portpicker
import pytest

from tests import fixtures

pytestmark = [pytest.mark.slow, pytest.mark.cpu_only]


def run_processes(workdir, overrides, num_processes, devices_per_process=1):
  """Runs the job as ``num_processes`` processes; returns their outputs."""
  port = portpicker.pick_unused_port()
  env = {
      **os.environ,
      'TF_CPP_MIN_LOG_LEVEL': '3',
      'XLA_FLAGS': os.environ['XLA_FLAGS']
      + f' --xla_force_host_platform_device_count={devices_per_process}',
  }
  processes = [
      subprocess.Popen(
          fixtures.main_command(workdir, overrides)
          + [
              '--distributed',
              f'--coordinator_address=127.0.0.1:{port}',
              f'--num_processes={num_processes}',
              f'--process_id={i}',
          ],
          cwd=fixtures.REPO_ROOT,
          env=env,
          stdout=subprocess.PIPE,
          stderr=subprocess.PIPE,
          text=True,
      )
      for i in range(num_processes)
  ]
  outputs = []
  for process in processes:
    try:
      _, stderr = process.communicate(timeout=300)
    finally:
      process.kill()
    outputs.append((process.returncode, stderr))
  return outputs


def results(workdir):
  with open(os.path.join(workdir, 'results.json')) as f:
    return json.load(f)


def metrics(result):
  """The training and evaluation history, less the speed."""
  return {
      kind: [
          {k: v for k, v in entry.items() if k != 'steps_per_second'}
          for entry in entries
      ]
      for kind, entries in result['history'].items()
  }


def test_two_processes_train_like_one_process_with_two_devices(
    tmp_path, mnist_dir
):
  overrides = {**fixtures.tiny_mnist_overrides(mnist_dir), 'method': 'rigl'}
  one = str(tmp_path / 'one')
  process = fixtures.run_main(
      one,
      overrides,
      env={
          'XLA_FLAGS': os.environ['XLA_FLAGS']
          + ' --xla_force_host_platform_device_count=2'
      },
  )
  assert process.returncode == 0, process.stderr[-3000:]
  two = str(tmp_path / 'two')
  for returncode, stderr in run_processes(two, overrides, 2):
    assert returncode == 0, stderr[-3000:]
  single, multi = results(one), results(two)
  assert (multi['num_processes'], multi['num_devices']) == (2, 2)
  # The same global batch on the same number of devices: bit-identical.
  assert multi['eval'] == single['eval']
  assert metrics(multi) == metrics(single)
  assert len(glob.glob(os.path.join(two, 'events.out.tfevents.*'))) == 1
  # The checkpoint restores: more steps resume from it.
  longer = {**overrides, 'num_train_steps': 18}
  for returncode, stderr in run_processes(two, longer, 2):
    assert returncode == 0, stderr[-3000:]
  assert results(two)['steps_this_run'] == 6
