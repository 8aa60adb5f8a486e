"""Finished runs rerun, an empty --workdir, optimizer structure, Ctrl-C."""

import os
import signal

import pytest

from rigl_jax import errors
from rigl_jax.training import compiled as compiled_lib
from rigl_jax.training import loop
from tests import fixtures


def _tree(directory):
  """{relative path: (size, mtime)} of every file under ``directory``."""
  listing = {}
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      stat = os.stat(path)
      listing[os.path.relpath(path, directory)] = (
          stat.st_size,
          stat.st_mtime_ns,
      )
  return listing


def test_a_finished_run_rerun_from_the_command_line_is_reported(
    tmp_path, mnist_dir
):
  workdir = str(tmp_path / 'run')
  overrides = {**fixtures.tiny_mnist_overrides(mnist_dir), 'method': 'static'}
  first = fixtures.run_main(workdir, overrides)
  assert first.returncode == 0, first.stderr[-2000:]
  results_path = os.path.join(workdir, 'results.json')
  with open(results_path, 'rb') as f:
    written = f.read()
  checkpoints = _tree(os.path.join(workdir, 'checkpoints'))

  again = fixtures.run_main(workdir, overrides)
  assert again.returncode == 0, again.stderr[-2000:]
  last = again.stdout.strip().splitlines()[-1]
  assert last.startswith(
      f'rigl_jax: the run in {workdir} had already finished, not run again; '
      f'results in {results_path}: '
  ), last
  with open(results_path, 'rb') as f:
    assert f.read() == written  # Not rewritten (steps_per_second kept).
  assert _tree(os.path.join(workdir, 'checkpoints')) == checkpoints
  assert not os.path.exists(os.path.join(workdir, 'lock'))


def test_an_empty_workdir_flag_is_one_line():
  process = fixtures.run_main('', {})
  assert process.returncode == 1, process.stderr[-2000:]
  assert process.stderr.strip().splitlines()[-1] == (
      'rigl_jax: WorkdirError: --workdir must name a directory, got ""'
  )
  assert 'Traceback' not in process.stderr


def test_toggling_l2_is_a_structure_mismatch_even_when_allowed(
    tmp_path, mnist_dir
):
  workdir = str(tmp_path)
  # configs/mnist_lenet300.py has optimizer.l2 = 1e-4.
  loop.train_and_evaluate(
      fixtures.tiny_mnist_config(mnist_dir, method='static'), workdir
  )
  os.remove(tmp_path / 'results.json')  # As if killed before the end.
  checkpoints = _tree(tmp_path / 'checkpoints')
  without_l2 = fixtures.tiny_mnist_config(
      mnist_dir, method='static', **{'optimizer.l2': 0.0}
  )
  with pytest.raises(errors.ResumeError, match='config.optimizer.l2'):
    loop.train_and_evaluate(without_l2, workdir)
  with pytest.raises(errors.ResumeError) as info:
    loop.train_and_evaluate(without_l2, workdir, allow_config_change=True)
  message = str(info.value)
  assert '\n' not in message
  assert "the optimizer state's structure" in message, message
  assert 'optimizer.l2' in message, message
  # An intact checkpoint is never set aside because the config changed.
  assert _tree(tmp_path / 'checkpoints') == checkpoints
  assert not os.path.exists(tmp_path / 'lock')


def test_ctrl_c_checkpoints_and_stops_like_sigterm(
    tmp_path, mnist_dir, monkeypatch
):
  config = fixtures.tiny_mnist_config(
      mnist_dir, method='static', eval_every_steps=4, checkpoint_every_steps=12
  )
  evaluate = compiled_lib.evaluate

  def evaluate_then_ctrl_c(*args, **kwargs):
    metrics = evaluate(*args, **kwargs)
    signal.raise_signal(signal.SIGINT)  # Ctrl-C during step 4.
    return metrics

  monkeypatch.setattr(compiled_lib, 'evaluate', evaluate_then_ctrl_c)
  with pytest.raises(errors.Preempted, match='preempted after step 4') as info:
    loop.train_and_evaluate(config, str(tmp_path))
  assert info.value.exit_code == 75
  assert os.listdir(tmp_path / 'checkpoints') == ['4']
  assert not (tmp_path / 'results.json').exists()
  assert not (tmp_path / 'lock').exists()
  monkeypatch.setattr(compiled_lib, 'evaluate', evaluate)
  results = loop.train_and_evaluate(config, str(tmp_path))
  assert results['steps_this_run'] == 8
