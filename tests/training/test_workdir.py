"""Workdirs: locks, paths, storage, finished runs, changed configs, checksums."""

import json
import os
import socket
import subprocess
import sys

import pytest

from rigl_jax import errors
from rigl_jax.training import checkpoints
from rigl_jax.training import identity
from rigl_jax.training import loop
from rigl_jax.training import workdir as workdir_lib
from tests import fixtures


def test_a_workdir_in_use_is_refused_naming_the_holder(tmp_path, mnist_dir):
  (tmp_path / 'lock').write_text(f'{os.getpid()} {socket.gethostname()}')
  with pytest.raises(errors.WorkdirError, match=f'process {os.getpid()} on'):
    loop.train_and_evaluate(
        fixtures.tiny_mnist_config(mnist_dir), str(tmp_path)
    )
  assert not (tmp_path / 'checkpoints').exists()


def test_a_dead_processs_lock_is_taken_over_and_released(tmp_path, mnist_dir):
  dead = subprocess.Popen([sys.executable, '-c', 'pass'])
  dead.wait()
  (tmp_path / 'lock').write_text(f'{dead.pid} {socket.gethostname()}')
  results = loop.train_and_evaluate(
      fixtures.tiny_mnist_config(mnist_dir, method='static'), str(tmp_path)
  )
  assert results['steps_this_run'] == 12
  assert not (tmp_path / 'lock').exists()


def test_relative_and_empty_workdirs(tmp_path, mnist_dir, monkeypatch):
  monkeypatch.chdir(tmp_path)
  loop.train_and_evaluate(
      fixtures.tiny_mnist_config(mnist_dir, method='static'), 'run'
  )
  assert (tmp_path / 'run' / 'results.json').exists()
  with pytest.raises(errors.WorkdirError, match='--workdir must name'):
    workdir_lib.resolve('')


def test_unusable_storage_fails_before_training(tmp_path, mnist_dir):
  config = fixtures.tiny_mnist_config(mnist_dir)
  (tmp_path / 'checkpoints').write_text('not a directory')
  with pytest.raises(errors.WorkdirError, match='checkpoints is a file'):
    loop.train_and_evaluate(config, str(tmp_path))
  blocker = tmp_path / 'file'
  blocker.write_text('x')
  with pytest.raises(errors.WorkdirError, match='cannot write to'):
    loop.train_and_evaluate(config, str(blocker / 'run'))


def test_a_bad_data_path_leaves_no_workdir_behind(tmp_path, mnist_dir):
  config = fixtures.tiny_mnist_config(
      str(tmp_path / 'no_such_data'), method='static'
  )
  with pytest.raises(errors.DataFileError):
    loop.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def test_changed_keys_resume_only_when_allowed(tmp_path, mnist_dir):
  workdir = str(tmp_path)
  loop.train_and_evaluate(
      fixtures.tiny_mnist_config(mnist_dir, method='static'), workdir
  )
  changed = fixtures.tiny_mnist_config(
      mnist_dir,
      method='static',
      num_train_steps=18,
      **{'optimizer.learning_rate': 0.05},
  )
  with pytest.raises(
      errors.ResumeError,
      match='config.optimizer.learning_rate was 0.1, now 0.05',
  ):
    loop.train_and_evaluate(changed, workdir)
  results = loop.train_and_evaluate(changed, workdir, allow_config_change=True)
  assert results['steps_this_run'] == 6
  assert results['config_changes'] == {'optimizer.learning_rate': [0.1, 0.05]}


def test_a_key_the_checkpoint_predates_reads_as_its_default(mnist_dir):
  """Keys added later (half_precision) leave older workdirs resumable."""
  current = identity.of_config(fixtures.tiny_mnist_config(mnist_dir))
  older = {k: v for k, v in current.items() if k != 'half_precision'}
  assert identity.changes(older, current) == {}
  half = {**current, 'half_precision': True}
  assert identity.changes(older, half) == {'half_precision': (False, True)}
  # A block of a method the code no longer has is read by no run.
  assert identity.changes({**current, 'removed.eps': 1.0}, current) == {}


def test_a_changed_optimizer_structure_is_a_mismatch_not_damage(
    tmp_path, mnist_dir
):
  workdir = str(tmp_path)
  loop.train_and_evaluate(
      fixtures.tiny_mnist_config(mnist_dir, method='static'), workdir
  )
  before = sorted(os.listdir(tmp_path / 'checkpoints'))
  changed = fixtures.tiny_mnist_config(
      mnist_dir,
      method='static',
      num_train_steps=18,
      **{'optimizer.grad_clip_norm': 1.0},
  )
  with pytest.raises(errors.ResumeError, match='is intact but does not match'):
    loop.train_and_evaluate(changed, workdir, allow_config_change=True)
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == before


def test_a_checkpoint_whose_checksum_fails_is_set_aside(tmp_path, mnist_dir):
  config = fixtures.tiny_mnist_config(
      mnist_dir, method='static', keep_checkpoints=3, checkpoint_every_steps=4
  )
  workdir = str(tmp_path)
  first = loop.train_and_evaluate(config, workdir)
  metadata = tmp_path / 'checkpoints' / '12' / 'metadata' / 'metadata'
  content = json.loads(metadata.read_text())
  content['checksum'] = '0' * 64  # As if a byte of the arrays had changed.
  metadata.write_text(json.dumps(content))
  os.remove(tmp_path / 'results.json')
  resumed = loop.train_and_evaluate(config, workdir)
  assert resumed['steps_this_run'] == 4  # From step 8.
  assert resumed['eval'] == first['eval']
  names = os.listdir(tmp_path / 'checkpoints')
  assert any(name.startswith('12.unreadable-') for name in names)


def test_checksums_see_every_byte():
  import numpy as np  # pylint: disable=g-import-not-at-top

  tree = {'w': np.arange(6, dtype=np.float32), 'step': np.int32(3)}
  flipped = {'w': tree['w'].copy(), 'step': tree['step']}
  flipped['w'].view(np.uint8)[5] ^= 1
  assert checkpoints.checksum(tree) == checkpoints.checksum(dict(tree))
  assert checkpoints.checksum(tree) != checkpoints.checksum(flipped)


def _main(args, cwd=fixtures.REPO_ROOT):
  return subprocess.run(
      [sys.executable, '-m', 'rigl_jax.main', *args],
      cwd=cwd,
      capture_output=True,
      text=True,
      timeout=300,
      check=False,
  )


@pytest.mark.parametrize(
    'args,expected',
    [
        (
            ['--config=configs/mnist_lenet300.py', '--config.sparsty=0.9'],
            'rigl_jax: bad flag or config: unknown config key sparsty',
        ),
        (
            ['--config=configs/no_such.py'],
            'rigl_jax: bad config file: [Errno 2] No such file or directory: '
            "'configs/no_such.py'",
        ),
        (
            ['--config=configs/mnist_lenet300.py:smok'],
            "rigl_jax: bad flag or config: config argument 'smok' is neither",
        ),
    ],
)
def test_bad_flags_and_config_files_get_one_line(tmp_path, args, expected):
  process = _main([*args, f'--workdir={tmp_path}'])
  assert process.returncode == 2
  lines = process.stderr.strip().splitlines()
  assert lines[-1].startswith(expected), process.stderr[-2000:]
  assert 'Traceback' not in process.stderr


def test_the_last_line_names_the_results(tmp_path, mnist_dir):
  overrides = fixtures.tiny_mnist_overrides(mnist_dir)
  process = fixtures.run_main(str(tmp_path / 'run'), overrides)
  assert process.returncode == 0, process.stderr[-2000:]
  last = process.stdout.strip().splitlines()[-1]
  assert last.startswith(
      f'rigl_jax: results in {tmp_path / "run" / "results.json"}: '
  )
  assert 'accuracy' in last and 'sparsity 0.900' in last


def test_checkpoint_metadata_without_identity_is_one_clear_error(
    tmp_path, mnist_dir
):
  config = fixtures.tiny_mnist_config(mnist_dir, method='static')
  loop.train_and_evaluate(config, str(tmp_path))
  for metadata in (tmp_path / 'checkpoints').glob('*/metadata/metadata'):
    content = json.loads(metadata.read_text())
    content.pop('identity', None)
    metadata.write_text(json.dumps(content))
  os.remove(tmp_path / 'results.json')
  with pytest.raises(errors.ResumeError, match='no identity in its metadata'):
    loop.train_and_evaluate(config, str(tmp_path))


def test_a_signal_during_the_last_step_lets_the_run_finish(
    tmp_path, mnist_dir, monkeypatch
):
  from rigl_jax.training import preemption  # pylint: disable=g-import-not-at-top

  # SIGTERM arrives while step 12 of 12 runs.
  monkeypatch.setattr(
      preemption.PreemptionWatch, 'should_stop', lambda self, step: step >= 12
  )
  results = loop.train_and_evaluate(
      fixtures.tiny_mnist_config(mnist_dir, method='static'), str(tmp_path)
  )
  assert results['steps_this_run'] == 12
  assert (tmp_path / 'results.json').exists()
