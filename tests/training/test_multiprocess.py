"""Several JAX processes on one machine: a multi-host run on localhost.

Each process is the real command line with ``--distributed``; JAX's CPU
collectives (gloo) carry the all-reduce between them.
"""

import glob
import json
import os
import re
import signal
import socket
import subprocess
import time

import portpicker
import pytest

from tests import fixtures

pytestmark = [pytest.mark.slow, pytest.mark.cpu_only]

PREEMPTED = 75


class Processes:
  """The processes of one multi-process run, their logs in files."""

  def __init__(
      self,
      workdir,
      overrides,
      num_processes=2,
      devices_per_process=1,
      extra_flags=None,
  ):
    port = portpicker.pick_unused_port()
    env = {
        **os.environ,
        'TF_CPP_MIN_LOG_LEVEL': '3',
        'XLA_FLAGS': os.environ['XLA_FLAGS']
        + f' --xla_force_host_platform_device_count={devices_per_process}',
    }
    # One dict for all processes, or a list with one per process.
    if isinstance(overrides, dict):
      overrides = [overrides] * num_processes
    self.logs = []
    self.processes = []
    for i in range(num_processes):
      flags = [
          '--distributed',
          f'--coordinator_address=127.0.0.1:{port}',
          f'--num_processes={num_processes}',
          f'--process_id={i}',
      ] + (extra_flags or {}).get(i, [])
      log = f'{workdir}.process{i}.{time.monotonic_ns()}.log'
      self.logs.append(log)
      with open(log, 'w') as out:
        self.processes.append(
            subprocess.Popen(
                fixtures.main_command(workdir, overrides[i]) + flags,
                cwd=fixtures.REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        )

  def log(self, i):
    with open(self.logs[i]) as f:
      return f.read()

  def last_line(self, i):
    return self.log(i).strip().splitlines()[-1]

  def wait_for_log(self, i, pattern, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      if re.search(pattern, self.log(i)):
        return
      assert self.processes[i].poll() is None, self.log(i)[-3000:]
      time.sleep(0.2)
    raise AssertionError(f'{pattern!r} not logged in {timeout} s')

  def wait(self, timeout=300):
    """The exit codes; a process still running after ``timeout`` fails."""
    deadline = time.monotonic() + timeout
    try:
      return [
          p.wait(max(1, deadline - time.monotonic())) for p in self.processes
      ]
    finally:
      for p in self.processes:
        p.kill()


def launch(workdir, overrides, num_processes=2, **kwargs):
  """Runs the job to the end as several processes; returns them."""
  processes = Processes(workdir, overrides, num_processes, **kwargs)
  returncodes = processes.wait()
  for i, code in enumerate(returncodes):
    assert code == 0, processes.log(i)[-3000:]
  return processes


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


def mask_checksums(log):
  """{step: checksum} of the masks a process logged at its checkpoints."""
  return dict(re.findall(r'masks checksum at step (\d+): (\w+)', log))


def single_process(workdir, overrides, devices):
  process = fixtures.run_main(
      workdir,
      overrides,
      env={
          'XLA_FLAGS': os.environ['XLA_FLAGS']
          + f' --xla_force_host_platform_device_count={devices}'
      },
  )
  assert process.returncode == 0, process.stderr[-3000:]
  return results(workdir)


def test_two_processes_of_two_devices_train_like_one_process_of_four(
    tmp_path, mnist_dir
):
  overrides = {**fixtures.tiny_mnist_overrides(mnist_dir), 'method': 'set'}
  single = single_process(str(tmp_path / 'one'), overrides, devices=4)
  two = str(tmp_path / 'two')
  processes = launch(two, overrides, devices_per_process=2)
  multi = results(two)
  assert (multi['num_processes'], multi['num_devices']) == (2, 4)
  # The same global batch on the same number of devices: bit-identical.
  assert multi['eval'] == single['eval']
  assert metrics(multi) == metrics(single)
  assert len(glob.glob(os.path.join(two, 'events.out.tfevents.*'))) == 1
  checksums = [mask_checksums(processes.log(i)) for i in range(2)]
  assert list(checksums[0]) == ['6', '12']  # At every checkpoint.
  assert checksums[0] == checksums[1]
  # Run again: both processes report the finished run.
  for i in range(2):
    assert 'had already finished' in launch(two, overrides).last_line(i)
  # The checkpoint restores: more steps resume from it.
  longer = {**overrides, 'num_train_steps': 18}
  launch(two, longer)
  assert results(two)['steps_this_run'] == 6


# rigl: the interruption test below; set: the one above.
@pytest.mark.parametrize('method', ['snfs', 'snip', 'pruning'])
def test_every_process_keeps_the_same_masks(tmp_path, mnist_dir, method):
  overrides = {**fixtures.tiny_mnist_overrides(mnist_dir), 'method': method}
  processes = launch(str(tmp_path / 'run'), overrides)
  checksums = [mask_checksums(processes.log(i)) for i in range(2)]
  assert list(checksums[0]) == ['6', '12']
  assert checksums[0] == checksums[1]


def long_overrides(mnist_dir):
  """A run long enough to be interrupted: 1,200 steps, checkpoints every 300."""
  return {
      **fixtures.tiny_mnist_overrides(mnist_dir),
      'method': 'rigl',
      'num_train_steps': 1200,
      'mask_update.interval': 100,
      'mask_update.end_step': 900,
      'lr_schedule.boundaries': (800,),
      'log_every_steps': 100,
      'eval_every_steps': 600,
      'checkpoint_every_steps': 300,
  }


def checkpoint_steps(workdir):
  directory = os.path.join(workdir, 'checkpoints')
  return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def test_preempted_or_killed_processes_resume_like_an_uninterrupted_run(
    tmp_path, mnist_dir
):
  overrides = long_overrides(mnist_dir)
  # Two processes of one device train like one process of two devices,
  # bit for bit.
  uninterrupted = single_process(
      str(tmp_path / 'uninterrupted'), overrides, devices=2
  )

  workdir = str(tmp_path / 'interrupted')
  # SIGTERM to one process, as a preempted host gets: both stop at the
  # same step, with a checkpoint there.
  processes = Processes(workdir, overrides)
  processes.wait_for_log(1, r'\[100\] train/loss')
  processes.processes[1].send_signal(signal.SIGTERM)
  assert processes.wait(timeout=120) == [PREEMPTED, PREEMPTED]
  stopped = [
      int(re.search(r'preempted after step (\d+)', processes.last_line(i))[1])
      for i in range(2)
  ]
  assert stopped[0] == stopped[1] < 1200
  assert checkpoint_steps(workdir)[-1] == stopped[0]

  # SIGKILL of process 0, which runs the coordinator: process 1 does not
  # hang. Its next collective fails and it names the lost peer in one
  # line; or, between collectives, JAX's coordination client ends it first
  # with its own line.
  processes = Processes(workdir, overrides)
  processes.wait_for_log(1, r'Resumed from the checkpoint')
  processes.wait_for_log(1, r'\[600\] train/loss')
  processes.processes[0].send_signal(signal.SIGKILL)
  start = time.monotonic()
  returncodes = processes.wait(timeout=60)
  assert time.monotonic() - start < 60
  assert returncodes[0] == -signal.SIGKILL
  if returncodes[1] == 1:
    assert re.match(
        r'rigl_jax: DistributedError: process 1 lost a peer process',
        processes.last_line(1),
    )
  else:
    assert returncodes[1] == -signal.SIGABRT
    assert 'This most likely indicates that another task died' in (
        processes.log(1)
    )

  # The same commands again: on from the last checkpoint, to the results
  # of the run that was never interrupted.
  launch(workdir, overrides)
  assert results(workdir)['steps_this_run'] < 1200 - stopped[0]
  assert results(workdir)['eval'] == uninterrupted['eval']
  assert metrics(results(workdir)) == metrics(uninterrupted)
  assert len(glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))) == 3


def failing_lines(workdir, overrides, timeout=120, **kwargs):
  """Every process's exit code and last line, for a run that must fail."""
  processes = Processes(workdir, overrides, **kwargs)
  returncodes = processes.wait(timeout)
  return [(code, processes.last_line(i)) for i, code in enumerate(returncodes)]


def test_processes_with_different_configs_or_flags_all_stop(
    tmp_path, mnist_dir
):
  overrides = fixtures.tiny_mnist_overrides(mnist_dir)
  lines = failing_lines(
      str(tmp_path / 'run'),
      [overrides, {**overrides, 'sparsity': 0.8}],
  )
  assert [code for code, _ in lines] == [1, 1]
  assert 'processes [1] were started with another config' in lines[0][1]
  assert 'this process has config.sparsity=0.8 (process 0: 0.9)' in lines[1][1]
  # A wrong --num_processes on one process joins, then fails the same way.
  lines = failing_lines(
      str(tmp_path / 'run'),
      overrides,
      extra_flags={1: ['--num_processes=3']},
  )
  assert [code for code, _ in lines] == [1, 1]
  assert 'num_processes=3 (process 0: 2)' in lines[1][1]
  assert not os.path.exists(tmp_path / 'run' / 'checkpoints')


def test_a_workdir_in_use_stops_every_process(tmp_path, mnist_dir):
  workdir = tmp_path / 'run'
  workdir.mkdir()
  # Held by a live process (this one) on this host.
  (workdir / 'lock').write_text(f'{os.getpid()} {socket.gethostname()}')
  lines = failing_lines(str(workdir), fixtures.tiny_mnist_overrides(mnist_dir))
  for code, line in lines:
    assert code == 1
    assert line.startswith('rigl_jax: WorkdirError: ')
    assert f'is in use by process {os.getpid()}' in line


def test_bad_process_flags_are_one_line(tmp_path, mnist_dir):
  port = portpicker.pick_unused_port()

  def one_process(process_id, *flags):
    """Exit code and last line of a process whose peers never start."""
    process = subprocess.run(
        fixtures.main_command(
            str(tmp_path / 'run'), fixtures.tiny_mnist_overrides(mnist_dir)
        )
        + [
            '--distributed',
            f'--coordinator_address=127.0.0.1:{port}',
            '--num_processes=2',
            f'--process_id={process_id}',
            *flags,
        ],
        cwd=fixtures.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return process.returncode, process.stderr.strip().splitlines()[-1]

  assert one_process(2) == (
      2,
      'rigl_jax: bad flag: --process_id=2 is out of range for '
      '--num_processes=2 (0 to 1)',
  )
  # Process 1 alone: nothing answers at the coordinator's address.
  start = time.monotonic()
  returncode, line = one_process(1, '--distributed_timeout=5')
  assert returncode == 1
  assert time.monotonic() - start < 30
  assert re.match(
      r"rigl_jax: DistributedError: the run's processes did not all join "
      rf'within 5 s through the coordinator at 127.0.0.1:{port}',
      line,
  )
