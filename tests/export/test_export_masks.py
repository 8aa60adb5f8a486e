"""``python -m rigl_jax.export`` on a tiny MNIST run, read back with NumPy.

The checks read masks.npz, params.npz and meta.json with plain NumPy and
json, and compare them with the run's results.json and checkpoint folders.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests import fixtures

_BLOCKED = ('tensorflow', 'tensorflow_datasets')
# The command line with TensorFlow and TFDS unimportable (None in
# sys.modules makes `import name` fail), as on a JAX machine without them.
_WITHOUT_TENSORFLOW = f"""
import runpy, sys
for name in {_BLOCKED!r}:
  sys.modules[name] = None
sys.argv = ['rigl_jax.export'] + sys.argv[1:]
runpy.run_module('rigl_jax.export', run_name='__main__', alter_sys=True)
"""


def _export(
    *flags: str, tensorflow: bool = True
) -> subprocess.CompletedProcess:
  prefix = (
      ['-m', 'rigl_jax.export'] if tensorflow else ['-c', _WITHOUT_TENSORFLOW]
  )
  return subprocess.run(
      [sys.executable, *prefix, *flags],
      cwd=fixtures.REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=300,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'},
      check=False,
  )


def _checkpoint_steps(workdir: str) -> list[int]:
  directory = os.path.join(workdir, 'checkpoints')
  return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def _load(out: str) -> tuple[dict, dict, dict]:
  """(masks, params, meta) of an export, read with NumPy and json."""
  with np.load(os.path.join(out, 'masks.npz')) as f:
    masks = {key: f[key] for key in f.files}
  with np.load(os.path.join(out, 'params.npz')) as f:
    params = {key: f[key] for key in f.files}
  with open(os.path.join(out, 'meta.json'), encoding='utf-8') as f:
    meta = json.load(f)
  return masks, params, meta


def _check_consistent(masks: dict, params: dict, meta: dict) -> None:
  """Masks are boolean, params zero where masked off, meta's counts match."""
  assert set(masks) == set(meta['sparsity']['layers'])
  total = active = 0
  for key, mask in masks.items():
    assert mask.dtype == np.bool_
    assert params[key].shape == mask.shape
    assert np.all(params[key][~mask] == 0), key
    assert int(mask.sum()) == round(
        (1 - meta['sparsity']['layers'][key]) * mask.size
    )
    total += mask.size
    active += int(mask.sum())
  assert meta['sparsity']['overall'] == pytest.approx(1 - active / total)


@pytest.fixture(scope='module')
def run(mnist_dir, tmp_path_factory) -> tuple[str, dict]:
  """(workdir, results.json) of a 12-step RigL run checkpointed at 6, 12."""
  from rigl_jax.training import loop  # pylint: disable=g-import-not-at-top

  workdir = str(tmp_path_factory.mktemp('run'))
  results = loop.train_and_evaluate(
      fixtures.tiny_mnist_config(mnist_dir), workdir
  )
  assert _checkpoint_steps(workdir) == [6, 12]
  return workdir, results


@pytest.fixture(scope='module')
def latest(run, tmp_path_factory) -> tuple[subprocess.CompletedProcess, str]:
  """(the command's process, its --out) of the run's latest checkpoint."""
  out = str(tmp_path_factory.mktemp('latest') / 'export')
  return _export(f'--workdir={run[0]}', f'--out={out}'), out


def test_export_holds_the_runs_masks_and_masked_params(run, latest):
  workdir, results = run
  process, out = latest
  assert process.returncode == 0, process.stderr
  assert process.stdout.strip().startswith(
      f'rigl_jax.export: step 12 of {workdir} in {out}: masks.npz'
  )
  masks, params, meta = _load(out)

  layers = results['sparsity']['layers']
  assert (
      set(masks)
      == set(layers)
      == {
          'Dense_0/kernel',
          'Dense_1/kernel',
          'Dense_2/kernel',
      }
  )
  assert set(params) == set(masks) | {
      'Dense_0/bias',
      'Dense_1/bias',
      'Dense_2/bias',
  }
  for key, mask in masks.items():
    assert int(mask.sum()) == round((1 - layers[key]) * mask.size), key
    assert np.all(params[key][~mask] == 0), key
  _check_consistent(masks, params, meta)

  assert meta['step'] == _checkpoint_steps(workdir)[-1] == 12
  assert meta['sparsity']['layers'] == layers
  assert meta['sparsity']['overall'] == results['sparsity']['overall']
  assert meta['identity']['method'] == 'rigl'
  assert meta['identity']['sparsity'] == 0.9
  assert meta['mask_structure']['kind'] == 'unstructured'


def test_step_exports_an_earlier_checkpoint_without_tensorflow(
    run, latest, tmp_path
):
  workdir = run[0]
  earlier = str(tmp_path / 'earlier')
  process = _export(
      f'--workdir={workdir}', f'--out={earlier}', '--step=6', tensorflow=False
  )
  assert process.returncode == 0, process.stderr
  masks, params, meta = _load(earlier)
  assert meta['step'] == 6
  _check_consistent(masks, params, meta)
  # RigL updated the masks at step 9.
  latest_masks = _load(latest[1])[0]
  assert any(not np.array_equal(masks[key], latest_masks[key]) for key in masks)


def test_an_unreadable_checkpoint_falls_back_to_the_previous_one(run, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(run[0], workdir)
  state = os.path.join(workdir, 'checkpoints', '12', 'state')
  for root, _, files in os.walk(state):
    for name in files:
      if os.path.basename(root) == 'd':  # The array data.
        with open(os.path.join(root, name), 'wb') as f:
          f.write(b'garbage')
  out = str(tmp_path / 'export')
  process = _export(f'--workdir={workdir}', f'--out={out}')
  assert process.returncode == 0, process.stderr
  assert 'cannot be read' in process.stderr
  assert os.path.join(workdir, 'checkpoints', '12') in process.stderr
  masks, params, meta = _load(out)
  assert meta['step'] == 6
  _check_consistent(masks, params, meta)
  # The workdir is only read.
  assert _checkpoint_steps(workdir) == [6, 12]


@pytest.mark.parametrize(
    'case', ['missing_workdir', 'no_checkpoint', 'unwritable_out', 'no_step']
)
def test_errors_are_one_line_naming_the_path(run, tmp_path, case):
  workdir = run[0]
  out = str(tmp_path / 'export')
  flags, named = {
      'missing_workdir': (
          [f'--workdir={tmp_path / "absent"}', f'--out={out}'],
          str(tmp_path / 'absent'),
      ),
      'no_checkpoint': (
          [f'--workdir={tmp_path}', f'--out={out}'],
          str(tmp_path),
      ),
      'unwritable_out': (
          [
              f'--workdir={workdir}',
              f'--out={os.path.join(workdir, "results.json", "export")}',
          ],
          os.path.join(workdir, 'results.json', 'export'),
      ),
      'no_step': (
          [f'--workdir={workdir}', f'--out={out}', '--step=7'],
          os.path.join(workdir, 'checkpoints'),
      ),
  }[case]
  process = _export(*flags)
  assert process.returncode == 1
  lines = process.stderr.strip().splitlines()
  assert len(lines) == 1, process.stderr
  assert lines[0].startswith('rigl_jax.export: WorkdirError: ')
  assert named in lines[0]
  assert not os.path.exists(out)


@pytest.mark.parametrize(
    'kind,overrides',
    [
        ('n_m', {'sparsity': 0.5, 'distribution': 'uniform'}),
        ('fan_in', {}),
    ],
)
def test_exported_structured_masks_hold_their_structure(
    mnist_dir, tmp_path, kind, overrides
):
  """Checked here from masks.npz alone, apart from the code that built them."""
  from rigl_jax.training import loop  # pylint: disable=g-import-not-at-top

  config = fixtures.tiny_mnist_config(
      mnist_dir, method='rigl', **{'mask_structure.kind': kind}, **overrides
  )
  loop.train_and_evaluate(config, str(tmp_path / 'run'))
  process = _export(
      f'--workdir={tmp_path / "run"}', f'--out={tmp_path / "out"}'
  )
  assert process.returncode == 0, process.stderr[-2000:]
  masks, _, meta = _load(str(tmp_path / 'out'))
  assert meta['mask_structure']['kind'] == kind
  for key, mask in masks.items():  # Dense kernels: [inputs, units].
    if kind == 'n_m':
      groups = mask.reshape(mask.shape[0] // 4, 4, mask.shape[1]).sum(axis=1)
      assert (groups == 2).all(), key
    else:
      assert len(set(mask.sum(axis=0))) == 1, key
