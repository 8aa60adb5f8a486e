"""Training and evaluation need neither TensorFlow nor TFDS.

Each job runs ``python -m rigl_jax.main`` in a subprocess where importing
``tensorflow`` or ``tensorflow_datasets`` fails, as on a JAX machine that
has neither.
"""

import json
import os
import subprocess
import sys

import pytest

from tests import fixtures

_BLOCKED = ('tensorflow', 'tensorflow_datasets')
# None in sys.modules makes `import name` raise ModuleNotFoundError, and
# importlib.util.find_spec(name) report the package as absent.
_PRELUDE = f"""
import runpy, sys
for name in {_BLOCKED!r}:
  sys.modules[name] = None
sys.argv = ['rigl_jax.main'] + sys.argv[1:]
runpy.run_module('rigl_jax.main', run_name='__main__', alter_sys=True)
"""


def run_blocked(workdir: str, config: str, flags: dict[str, str]):
  """Runs rigl_jax.main with TensorFlow and TFDS blocked; returns results."""
  args = [f'--config={config}', f'--workdir={workdir}'] + [
      f'--config.{k}={v}' for k, v in flags.items()
  ]
  # Optimized code: the main job runs 12,000 steps (tests/conftest.py
  # compiles at -O0 for speed of compilation).
  env = dict(os.environ)
  env['XLA_FLAGS'] = ' '.join(
      flag
      for flag in env.get('XLA_FLAGS', '').split()
      if flag != '--xla_backend_optimization_level=0'
  )
  if not env['XLA_FLAGS']:
    del env['XLA_FLAGS']
  process = subprocess.run(
      [sys.executable, '-c', _PRELUDE] + args,
      cwd=fixtures.REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=900,
      check=False,
      env=env,
  )
  assert process.returncode == 0, process.stderr[-3000:]
  with open(os.path.join(workdir, 'results.json')) as f:
    return json.load(f)


def test_prelude_blocks_tensorflow(tmp_path):
  process = subprocess.run(
      [
          sys.executable,
          '-c',
          _PRELUDE.split('sys.argv')[0] + 'import tensorflow',
      ],
      capture_output=True,
      text=True,
      check=False,
  )
  assert process.returncode == 1
  assert 'import of tensorflow halted' in process.stderr


@pytest.mark.slow
def test_main_job_with_tensorflow_blocked(tmp_path, mnist_dir):
  """The README's main job: LeNet-300-100, RigL 90% ERK, 12,000 steps."""
  local_dir = os.path.join(fixtures.SHARED_DATA, 'mnist')
  if not os.path.isdir(local_dir):
    local_dir = mnist_dir  # The same job on the tiny stand-in.
  results = run_blocked(
      str(tmp_path),
      'configs/mnist_lenet300.py',
      {'dataset.local_dir': local_dir},
  )
  assert results['steps_this_run'] == 12_000
  assert results['sparsity']['overall'] == pytest.approx(0.9, abs=1e-3)
  if local_dir != mnist_dir:
    assert results['eval']['accuracy'] > 0.97


@pytest.mark.slow
def test_cifar10_smoke_job_with_tensorflow_blocked(tmp_path):
  local_dir = tmp_path / 'cifar10'
  local_dir.mkdir()
  fixtures.write_zip(local_dir / 'cifar10-jpg.zip', fixtures.cifar10_entries())
  results = run_blocked(
      str(tmp_path / 'run'),
      'configs/cifar10_wrn22_2.py:smoke',
      {'dataset.local_dir': str(local_dir)},
  )
  assert results['steps_this_run'] == 2
  assert results['topology']['updates'] == 2


@pytest.mark.slow
def test_shakespeare_smoke_job_with_tensorflow_blocked(tmp_path):
  local_dir = os.path.join(fixtures.SHARED_DATA, 'tinyshakespeare')
  if not os.path.isdir(local_dir):
    local_dir = str(tmp_path)
    (tmp_path / 'input.txt').write_text('To be, or not to be. ' * 400)
  results = run_blocked(
      str(tmp_path / 'run'),
      'configs/shakespeare_gru.py:smoke',
      {'dataset.local_dir': local_dir},
  )
  assert results['steps_this_run'] == 2
  assert 'bits_per_char' in results['eval']
