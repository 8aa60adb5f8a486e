"""Signals during a run, checkpoint saves that fail, signs of life.

A run stops with a checkpoint on SIGTERM, Ctrl-C or SIGHUP and aborts on a
second one; a failed save ends the process at once with one line; the
progress line shows whatever the log interval.
"""

import dataclasses
import errno
import hashlib
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time

import jax
from jax.experimental import io_callback
import pytest

from rigl_jax import errors
from rigl_jax.data import device_feed
from rigl_jax.training import compiled as compiled_lib
from rigl_jax.training import loop
from rigl_jax.training import preemption
from rigl_jax.training import progress as progress_lib
from tests import fixtures

# Runs rigl_jax.main after the Python code before it (a fault to inject).
_RUN_MAIN = """
import runpy, sys
sys.argv = ['rigl_jax.main'] + sys.argv[1:]
runpy.run_module('rigl_jax.main', run_name='__main__', alter_sys=True)
"""

# orbax's background write of the checkpoint at step 8 finds the disk full.
FULL_DISK_AT_8 = """
import errno, re
from orbax.checkpoint._src.handlers import json_checkpoint_handler as handler
save = handler.JsonCheckpointHandler._save_fn
async def full_disk(self, item, directory):
  if re.search(r'/8[.]orbax-checkpoint-tmp', str(directory)):
    raise OSError(errno.ENOSPC, 'No space left on device', str(directory))
  await save(self, item, directory)
handler.JsonCheckpointHandler._save_fn = full_disk
"""

# Before the save at step 8, checkpoints/ is moved away and a file takes
# its name (a directory made unwritable under the run).
FILE_FOR_THE_DIRECTORY_AT_8 = """
import os
from rigl_jax.training import checkpoints
save = checkpoints.Checkpointer.save
def replace_directory(self, step, *args, **kwargs):
  if step == 8:
    self.wait_until_finished()
    os.rename(self.directory, self.directory + '.moved')
    open(self.directory, 'w').close()
  save(self, step, *args, **kwargs)
checkpoints.Checkpointer.save = replace_directory
"""

# Every save after step 20 takes 30 s (a slow disk).
SLOW_SAVES_AFTER_20 = """
import re, time
from orbax.checkpoint._src.handlers import json_checkpoint_handler as handler
save = handler.JsonCheckpointHandler._save_fn
async def slow(self, item, directory):
  step = re.search(r'/(\\d+)[.]orbax-checkpoint-tmp', str(directory))
  if step and int(step.group(1)) > 20:
    time.sleep(30)
  await save(self, item, directory)
handler.JsonCheckpointHandler._save_fn = slow
"""


def start_main(workdir, overrides, prelude='', stderr=None):
  """``python -m rigl_jax.main`` after ``prelude``, stderr to a file."""
  command = fixtures.main_command(workdir, overrides)
  return subprocess.Popen(
      [sys.executable, '-c', prelude + _RUN_MAIN] + command[3:],
      cwd=fixtures.REPO_ROOT,
      stdout=subprocess.DEVNULL,
      stderr=stderr,
      text=True,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'},
  )


def wait_for(condition, process, timeout=600):
  """Polls ``condition`` until true; fails if ``process`` ends first."""
  deadline = time.time() + timeout
  while not condition():
    assert process.poll() is None, f'exited {process.returncode} too early'
    assert time.time() < deadline, 'timed out'
    time.sleep(0.01)


def complete_checkpoints(workdir):
  directory = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(directory):
    return []
  return sorted(int(n) for n in os.listdir(directory) if n.isdigit())


def user_lines(stderr):
  """The lines of stderr that are not absl's INFO and WARNING log lines."""
  return [
      line
      for line in stderr.splitlines()
      if line.strip() and not re.match(r'[IW]\d{4} ', line)
  ]


@pytest.mark.slow
@pytest.mark.parametrize(
    'fault',
    [FULL_DISK_AT_8, FILE_FOR_THE_DIRECTORY_AT_8],
    ids=['full_disk', 'file_for_the_directory'],
)
def test_a_failed_save_exits_at_once_with_one_line_and_the_rerun_resumes(
    tmp_path, mnist_dir, fault
):
  workdir = str(tmp_path / 'run')
  overrides = {
      **fixtures.tiny_mnist_overrides(mnist_dir),
      'method': 'static',
      'checkpoint_every_steps': 4,
  }
  stderr_path = tmp_path / 'stderr'
  with open(stderr_path, 'w') as stderr:
    process = start_main(workdir, overrides, fault, stderr)
    try:
      wait_for(
          lambda: 'rigl_jax: ' in stderr_path.read_text()
          or process.poll() is not None,
          process,
      )
      # orbax's threads, left waiting for files that will never come, once
      # kept the process alive for minutes after the line.
      process.wait(timeout=30)
    finally:
      process.kill()
  lines = user_lines(stderr_path.read_text())
  assert process.returncode == 1, lines
  # One line, naming the step whose save failed and the directory.
  assert len(lines) == 1, lines
  assert lines[0].startswith(
      'rigl_jax: WorkdirError: could not save the checkpoint at step 8 in '
      f'{workdir}/checkpoints: '
  ), lines[0]
  assert not os.path.exists(os.path.join(workdir, 'lock'))

  if fault == FILE_FOR_THE_DIRECTORY_AT_8:  # The cause, removed.
    checkpoints = os.path.join(workdir, 'checkpoints')
    os.remove(checkpoints)
    os.rename(checkpoints + '.moved', checkpoints)
  assert complete_checkpoints(workdir) == [4]  # Intact.
  again = fixtures.run_main(workdir, overrides)
  assert again.returncode == 0, again.stderr[-3000:]
  assert 'Resumed from the checkpoint at step 4.' in again.stderr
  assert complete_checkpoints(workdir) == [8, 12]


def test_a_failed_background_save_names_its_own_step(
    tmp_path, mnist_dir, monkeypatch
):
  # pylint: disable=g-import-not-at-top
  from orbax.checkpoint._src.handlers import json_checkpoint_handler

  handler = json_checkpoint_handler.JsonCheckpointHandler
  save = handler._save_fn  # pylint: disable=protected-access

  async def full_disk(self, item, directory):
    if re.search(r'/4[.]orbax-checkpoint-tmp', str(directory)):
      raise OSError(errno.ENOSPC, 'No space left on device', str(directory))
    await save(self, item, directory)

  monkeypatch.setattr(handler, '_save_fn', full_disk)
  config = fixtures.tiny_mnist_config(
      mnist_dir, method='static', checkpoint_every_steps=4
  )
  # The failure of step 4's save shows at the next save, step 8's.
  with pytest.raises(errors.WorkdirError) as info:
    loop.train_and_evaluate(config, str(tmp_path))
  message = str(info.value)
  assert message.startswith(
      f'could not save the checkpoint at step 4 in {tmp_path}/checkpoints: '
      'OSError: [Errno 28] No space left on device'
  ), message
  assert complete_checkpoints(str(tmp_path)) == []
  assert not (tmp_path / 'lock').exists()
  monkeypatch.setattr(handler, '_save_fn', save)
  results = loop.train_and_evaluate(config, str(tmp_path))
  assert results['steps_this_run'] == 12


def wait_until(condition, timeout=30):
  deadline = time.time() + timeout
  while not condition():
    assert time.time() < deadline, 'timed out'
    time.sleep(0.01)


def test_a_second_signal_aborts_at_once_without_a_checkpoint(
    monkeypatch, capfd
):
  exits, aborted = [], []
  monkeypatch.setattr(preemption.os, '_exit', exits.append)
  for first, second in (
      (signal.SIGINT, signal.SIGINT),
      (signal.SIGTERM, signal.SIGTERM),
      (signal.SIGHUP, signal.SIGINT),
  ):
    previous = signal.getsignal(second)
    with preemption.PreemptionWatch(
        1, lambda step: False, lambda: aborted.append(True), '/w/checkpoints'
    ) as watch:
      assert not watch.should_stop(1)
      signal.raise_signal(first)
      assert watch.should_stop(1)
      signal.raise_signal(second)
      wait_until(lambda: exits)
    assert signal.getsignal(second) is previous
    assert exits == [preemption.ABORTED_EXIT_CODE] == [130]
    assert aborted == [True]  # Released the workdir, once.
    exits.clear()
    aborted.clear()
    assert capfd.readouterr().err.splitlines()[-1] == (
        'rigl_jax: aborted without a checkpoint (a second '
        f'{signal.Signals(second).name}); the checkpoints in /w/checkpoints '
        'are intact'
    )


def test_two_signals_during_a_long_call_into_c_abort(monkeypatch):
  exits = []
  monkeypatch.setattr(preemption.os, '_exit', exits.append)

  def signal_twice():
    time.sleep(0.2)  # The main thread is in the C call by now.
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)

  with preemption.PreemptionWatch(1, lambda step: False):
    sender = threading.Thread(target=signal_twice)
    sender.start()
    # Like a device step or a save: no Python handler runs until it
    # returns, and then once for both signals.
    hashlib.pbkdf2_hmac('sha256', b'', b'', 2_000_000)
    sender.join()
    wait_until(lambda: exits)
  assert exits == [preemption.ABORTED_EXIT_CODE]


def endless_run(mnist_dir):
  """A Static run that only a signal ends, saving every 20 steps."""
  return {
      **fixtures.tiny_mnist_overrides(mnist_dir),
      'method': 'static',
      'num_train_steps': 10**6,
      'log_every_steps': 10**6,
      'eval_every_steps': 10**6,
      'checkpoint_every_steps': 20,
  }


@pytest.mark.slow
def test_a_second_ctrl_c_during_a_save_ends_the_process_at_once(
    tmp_path, mnist_dir
):
  workdir = str(tmp_path / 'run')
  overrides = endless_run(mnist_dir)
  stderr_path = tmp_path / 'stderr'
  with open(stderr_path, 'w') as stderr:
    process = start_main(workdir, overrides, SLOW_SAVES_AFTER_20, stderr)
    try:
      wait_for(lambda: complete_checkpoints(workdir) == [20], process)
      process.send_signal(signal.SIGINT)  # Saves (slowly) after this step.
      time.sleep(0.05)
      process.send_signal(signal.SIGINT)
      start = time.time()
      process.wait(timeout=60)
      # Well before the save's 30 s, and without SIGKILL.
      assert time.time() - start < 20
    finally:
      process.kill()
  lines = user_lines(stderr_path.read_text())
  assert process.returncode == 130, lines
  assert lines == [
      'rigl_jax: aborted without a checkpoint (a second SIGINT); the '
      f'checkpoints in {workdir}/checkpoints are intact'
  ]
  assert complete_checkpoints(workdir) == [20]
  fixtures.load_checkpoint(workdir, 20)  # Readable.
  assert not os.path.exists(os.path.join(workdir, 'lock'))


@pytest.mark.slow
def test_sighup_checkpoints_and_stops_like_sigterm(tmp_path, mnist_dir):
  workdir = str(tmp_path / 'run')
  overrides = endless_run(mnist_dir)
  stderr_path = tmp_path / 'stderr'
  with open(stderr_path, 'w') as stderr:
    process = start_main(workdir, overrides, '', stderr)
    try:
      wait_for(lambda: complete_checkpoints(workdir), process)
      process.send_signal(signal.SIGHUP)  # The terminal closed.
      process.wait(timeout=120)
    finally:
      process.kill()
  lines = user_lines(stderr_path.read_text())
  assert process.returncode == errors.Preempted.exit_code == 75, lines
  (line,) = lines
  stopped_at = int(
      re.match(r'rigl_jax: Preempted: preempted after step (\d+):', line)[1]
  )
  assert complete_checkpoints(workdir)[-1] == stopped_at
  assert not os.path.exists(os.path.join(workdir, 'lock'))


def _slowed_on_the_device(train_step, ran):
  """``train_step`` and a device computation of 50 ms after it.

  The host is not held up: only the devices are slow, as with a big model.
  ``ran`` gets an entry as each step's slow part runs.
  """

  def sleep(*leaves):
    time.sleep(0.05)
    ran.append(time.monotonic())
    return leaves

  @jax.jit
  def delay(metrics):
    leaves, tree = jax.tree.flatten(metrics)
    shapes = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in leaves]
    return jax.tree.unflatten(tree, io_callback(sleep, shapes, *leaves))

  def step(state, metrics, inputs):
    state, metrics = train_step(state, metrics, inputs)
    return state, delay(metrics)

  return step


def test_sigterm_on_slow_steps_stops_within_a_few_steps_with_a_checkpoint(
    tmp_path, mnist_dir, monkeypatch
):
  ran, signalled_after = [], []
  compile_steps = compiled_lib.compile_steps

  def compile_slow_steps(*args, **kwargs):
    compiled = compile_steps(*args, **kwargs)
    return dataclasses.replace(
        compiled,
        train={
            update: _slowed_on_the_device(step, ran)
            for update, step in compiled.train.items()
        },
    )

  monkeypatch.setattr(compiled_lib, 'compile_steps', compile_slow_steps)
  inputs = device_feed.Resident.inputs

  def inputs_then_signal(self, step):
    if step == 10:  # SIGTERM while the devices run behind.
      signalled_after.append(len(ran))
      signal.raise_signal(signal.SIGTERM)
    return inputs(self, step)

  monkeypatch.setattr(device_feed.Resident, 'inputs', inputs_then_signal)
  # No log, evaluation or checkpoint before the end to sync with the host.
  config = fixtures.tiny_mnist_config(
      mnist_dir,
      method='static',
      num_train_steps=60,
      log_every_steps=60,
      eval_every_steps=60,
      checkpoint_every_steps=60,
  )
  with pytest.raises(errors.Preempted) as info:
    loop.train_and_evaluate(config, str(tmp_path))
  stopped_at = int(re.search(r'after step (\d+)', str(info.value))[1])
  (done_on_devices,) = signalled_after
  assert stopped_at - done_on_devices <= loop.MAX_STEPS_IN_FLIGHT + 1
  assert complete_checkpoints(str(tmp_path)) == [stopped_at]


def test_progress_shows_whatever_the_log_interval(
    tmp_path, mnist_dir, monkeypatch, caplog
):
  caplog.set_level(logging.INFO)
  # Every step's clock check reports (10 s in real runs).
  monkeypatch.setattr(progress_lib, 'REPORT_EVERY_SECONDS', 0.0)
  config = fixtures.tiny_mnist_config(
      mnist_dir, method='static', log_every_steps=12
  )
  loop.train_and_evaluate(config, str(tmp_path))
  messages = [record.getMessage() for record in caplog.records]
  progress_line = re.compile(r'step (\d+)/12 .* steps/s, ETA ')
  reported = [int(m[1]) for m in map(progress_line.match, messages) if m]
  assert reported == list(range(1, 13))
  # Signs of life before the first step, and how long each took.
  assert 'Loading the data...' in messages
  assert any(
      re.fullmatch(r'Loaded the data in [\d.]+ s\.', m) for m in messages
  )
  assert 'Compiling the steps...' in messages
  assert any(
      re.fullmatch(r'Compiled the steps in [\d.]+ s\.', m) for m in messages
  )
