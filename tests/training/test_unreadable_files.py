"""Files a run cannot write or read: one line naming the file, never a traceback.

results.json that cannot be written at the end of a run, or that is cut
short or lacks its keys when the run is run again; data files damaged.
"""

import json
import os
import shutil

from etils import epath
import numpy as np
import pytest

from rigl_jax import errors
from rigl_jax.training import loop
from tests import fixtures

STATIC = {'method': 'static'}


@pytest.fixture(scope='module')
def finished(tmp_path_factory, mnist_dir):
  """(workdir, results) of a finished tiny run."""
  workdir = str(tmp_path_factory.mktemp('finished') / 'run')
  results = loop.train_and_evaluate(
      fixtures.tiny_mnist_config(mnist_dir, **STATIC), workdir
  )
  return workdir, results


def copy_run(finished, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(finished[0], workdir)
  return workdir


def checkpoint_names(workdir):
  """The checkpoints' folders: the last at step 12, none set aside."""
  return sorted(os.listdir(os.path.join(workdir, 'checkpoints')), key=int)


def rigl_jax_lines(stderr):
  """The lines that main prints itself (absl's log lines start otherwise)."""
  return [line for line in stderr.splitlines() if line.startswith('rigl_jax:')]


def test_results_json_that_cannot_be_written_keeps_the_run_and_a_rerun_writes_it(
    tmp_path, mnist_dir
):
  config = fixtures.tiny_mnist_config(mnist_dir, **STATIC)
  workdir = str(tmp_path / 'run')
  temporary = os.path.join(workdir, 'results.json.tmp')
  os.makedirs(temporary)
  with pytest.raises(errors.WorkdirError) as info:
    loop.train_and_evaluate(config, workdir)
  message = str(info.value)
  assert message.startswith(f'cannot write {temporary}: Is a directory. ')
  assert f'checkpoint at step 12 in {workdir}/checkpoints' in message
  assert checkpoint_names(workdir) == ['6', '12']
  assert not os.path.exists(os.path.join(workdir, 'results.json'))
  assert not os.path.exists(os.path.join(workdir, 'lock'))
  os.rmdir(temporary)  # The cause fixed, the same command again:
  results = loop.train_and_evaluate(config, workdir)
  assert results['steps_this_run'] == 0  # Evaluated, not trained again.
  with open(os.path.join(workdir, 'results.json')) as f:
    assert json.load(f)['eval'] == results['eval']
  assert checkpoint_names(workdir) == ['6', '12']


def test_results_json_that_cannot_be_written_is_one_line(
    finished, tmp_path, mnist_dir
):
  workdir = copy_run(finished, tmp_path)
  os.remove(os.path.join(workdir, 'results.json'))
  os.makedirs(os.path.join(workdir, 'results.json.tmp'))
  overrides = {**fixtures.tiny_mnist_overrides(mnist_dir), **STATIC}
  process = fixtures.run_main(workdir, overrides)
  assert process.returncode == 1, process.stderr[-3000:]
  assert 'Traceback' not in process.stderr
  (line,) = rigl_jax_lines(process.stderr)
  assert line == process.stderr.strip().splitlines()[-1]
  assert line.startswith(
      f'rigl_jax: WorkdirError: cannot write {workdir}/results.json.tmp: '
      'Is a directory. '
  )
  assert checkpoint_names(workdir) == ['6', '12']


def read_only(path):
  raise PermissionError(13, 'Permission denied', str(path))


@pytest.mark.parametrize('blocked', ['read_only', 'results_json_is_a_folder'])
def test_each_way_results_json_cannot_be_written_is_named(
    tmp_path, monkeypatch, blocked
):
  workdir = epath.Path(tmp_path)
  if blocked == 'read_only':  # As root, chmod would not stop the write.
    monkeypatch.setattr(
        epath.Path, 'write_text', lambda self, text: read_only(self)
    )
    expected = f'cannot write {tmp_path}/results.json.tmp: Permission denied. '
  else:
    (tmp_path / 'results.json').mkdir()
    expected = f'cannot write {tmp_path}/results.json: '
  with pytest.raises(errors.WorkdirError) as info:
    loop._write_results(workdir, {'num_train_steps': 12})  # pylint: disable=protected-access
  assert str(info.value).startswith(expected)
  assert ('is a directory' in str(info.value).lower()) == (
      blocked == 'results_json_is_a_folder'
  )
  assert f'checkpoint at step 12 in {tmp_path}/checkpoints' in str(info.value)


def cut_short(path):
  """Its first 200 bytes, as ``head -c 200`` makes."""
  with open(path, 'rb') as f:
    head = f.read(200)
  with open(path, 'wb') as f:
    f.write(head)


def without_keys(path):
  with open(path, 'w') as f:
    f.write('{"eval": {}}')


@pytest.mark.parametrize('damage', [cut_short, without_keys])
def test_an_unreadable_results_json_is_written_again_from_the_last_checkpoint(
    finished, tmp_path, mnist_dir, damage, caplog
):
  workdir = copy_run(finished, tmp_path)
  path = os.path.join(workdir, 'results.json')
  damage(path)
  results = loop.train_and_evaluate(
      fixtures.tiny_mnist_config(mnist_dir, **STATIC), workdir
  )
  assert results['steps_this_run'] == 0
  assert results['eval'] == finished[1]['eval']
  with open(path) as f:
    assert json.load(f)['eval'] == finished[1]['eval']
  assert checkpoint_names(workdir) == ['6', '12']
  (warning,) = [
      r.getMessage() for r in caplog.records if path in r.getMessage()
  ]
  assert warning.startswith(f'{path}: ')


def test_a_rerun_over_a_results_json_without_keys_reports_the_new_one(
    finished, tmp_path, mnist_dir
):
  workdir = copy_run(finished, tmp_path)
  path = os.path.join(workdir, 'results.json')
  without_keys(path)
  overrides = {**fixtures.tiny_mnist_overrides(mnist_dir), **STATIC}
  process = fixtures.run_main(workdir, overrides)
  assert process.returncode == 0, process.stderr[-3000:]
  assert 'Traceback' not in process.stderr
  assert f'{path}: has no resolved_config' in process.stderr
  last = process.stdout.strip().splitlines()[-1]
  assert last.startswith(f'rigl_jax: results in {path}: ')
  with open(path) as f:
    assert json.load(f)['eval'] == finished[1]['eval']


def test_a_corrupt_mnist_gzip_is_one_line_naming_it(tmp_path, mnist_dir):
  local = tmp_path / 'mnist'
  shutil.copytree(mnist_dir, local)
  path = local / 't10k-images-idx3-ubyte.gz'
  data = bytearray(path.read_bytes())
  data[1000:1100] = np.random.default_rng(0).bytes(100)  # zlib.error
  path.write_bytes(bytes(data))
  process = fixtures.run_main(
      str(tmp_path / 'run'), fixtures.tiny_mnist_overrides(str(local))
  )
  assert process.returncode == 1, process.stderr[-3000:]
  assert 'Traceback' not in process.stderr
  (line,) = rigl_jax_lines(process.stderr)
  assert line == process.stderr.strip().splitlines()[-1]
  assert line.startswith(
      f'rigl_jax: DataFileError: {path}: cannot be read as gzip (corrupt or '
      'truncated'
  )
