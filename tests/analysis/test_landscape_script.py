"""scripts/sparse_landscape.py end to end on a tiny MNIST."""

import json
import os
import subprocess
import sys

import pytest

from rigl_jax import table_provenance
from rigl_jax.training import build
from rigl_jax.training import config as run_config
from tests import fixtures

EXPERIMENTS = ('landscape_mnist', 'landscape_cifar10')


@pytest.mark.parametrize('name', EXPERIMENTS)
def test_analysis_configs_build_and_document_their_command(name):
  path = os.path.join(fixtures.REPO_ROOT, 'experiments', f'{name}.py')
  config = run_config.load(path)
  options = build.build(config).resolved['model']['options']
  assert options.get('dropout_rate', 0.0) == 0
  with open(path, encoding='utf-8') as f:
    source = f.read()
  assert f'scripts/sparse_landscape.py --config=experiments/{name}.py' in source


@pytest.mark.slow
def test_writes_the_three_analyses(tmp_path, mnist_dir):
  overrides = {
      **fixtures.tiny_mnist_overrides(mnist_dir),
      'sparsity': 0.9,
  }
  flags = [
      f'--config.{k}={v!r}' if isinstance(v, tuple) else f'--config.{k}={v}'
      for k, v in overrides.items()
  ]
  output = tmp_path / 'out'
  process = subprocess.run(
      [
          sys.executable,
          'scripts/sparse_landscape.py',
          '--config=configs/mnist_lenet300.py',
          *flags,
          f'--root={tmp_path / "runs"}',
          f'--output_dir={output}',
          '--seeds=2',
          '--fit_steps=5',
          '--eval_batches=2',
      ],
      cwd=fixtures.REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=900,
      check=False,
  )
  assert process.returncode == 0, process.stderr[-3000:]
  numbers = json.loads((output / 'numbers.json').read_text())
  paths = numbers['paths']
  assert len(paths['Linear']['loss']) == 21
  # Every path starts and ends at the two solutions.
  for path in paths.values():
    assert path['loss'][0] == paths['Linear']['loss'][0]
    assert path['loss'][-1] == paths['Linear']['loss'][-1]
  assert set(numbers['restarts']) == {'start', 'RigL', 'Static'}
  assert all(len(v) == 2 for v in numbers['lottery'].values())
  for name in ('paths.md', 'restarts.md', 'lottery.md'):
    table = (output / name).read_text()
    provenance = table[table.index(table_provenance.HEADING) :]
    # pruning, static, 2 restarts, 2 seeds x (RigL and two tickets).
    assert '- Runs: 10, finished ' in provenance, provenance
    assert 'sparse_landscape.py' in provenance
