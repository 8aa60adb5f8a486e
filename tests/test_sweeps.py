"""The sweep tool: expansion, naming, filtering, running and resuming."""

import json
import os
import subprocess
import sys

import pytest

from tests import fixtures

SWEEP = os.path.join(fixtures.REPO_ROOT, 'scripts', 'sweep.py')


def write_experiment(path, body):
  path.write_text('CONFIG = "configs/mnist_lenet300.py"\n' + body)
  return str(path)


def sweep(*args, env=None):
  """Runs scripts/sweep.py from the repository (in ``env``, if given)."""
  return subprocess.run(
      [sys.executable, SWEEP, *args],
      capture_output=True,
      text=True,
      cwd=fixtures.REPO_ROOT,
      timeout=900,
      check=False,
      env=env,
  )


def test_prints_one_command_per_selected_run(tmp_path):
  experiment = write_experiment(
      tmp_path / 'exp.py',
      'def runs():\n'
      '  return [dict(method=m, sparsity=s) for m in ("set", "rigl")\n'
      '          for s in (0.5, 0.9)]\n',
  )
  process = sweep(
      experiment,
      f'--root={tmp_path}/root',
      '--only=method=rigl',
      '--set=seed=3',
  )
  assert process.returncode == 0, process.stderr
  lines = process.stdout.strip().splitlines()
  assert lines == [
      'python -m rigl_jax.main --config=configs/mnist_lenet300.py '
      f'--workdir={tmp_path}/root/exp/method=rigl,sparsity={s},seed=3 '
      f'--config.method=rigl --config.sparsity={s} --config.seed=3'
      for s in ('0.5', '0.9')
  ]


def test_set_values_name_workdirs_but_data_paths_do_not(tmp_path):
  experiment = write_experiment(
      tmp_path / 'exp.py', 'def runs():\n  return [dict(method="rigl")]\n'
  )
  process = sweep(
      experiment,
      f'--root={tmp_path}/root',
      '--set=optimizer.learning_rate=0.05',
      '--set=dataset.local_dir=/data/mnist',
  )
  assert process.returncode == 0, process.stderr
  assert (
      f'--workdir={tmp_path}/root/exp/method=rigl,optimizer.learning_rate=0.05 '
      in (process.stdout)
  )


def test_a_workdir_with_another_configs_results_is_not_skipped(tmp_path):
  from rigl_jax import sweeps  # pylint: disable=g-import-not-at-top

  workdir = tmp_path / 'run'
  workdir.mkdir()
  (workdir / 'results.json').write_text(
      json.dumps(
          {
              'config': {
                  'method': 'rigl',
                  'optimizer': {'learning_rate': 0.1},
                  'layer_sparsity': [['^stem/', 'dense']],
                  'dataset': {'local_dir': '/old'},
              }
          }
      )
  )
  same = [
      '--config.method=rigl',
      "--config.layer_sparsity=(('^stem/', 'dense'),)",
      '--config.dataset.local_dir=/new',
  ]
  assert sweeps.stored_config_mismatch(str(workdir), same) is None
  changed = same + ['--config.optimizer.learning_rate=0.05']
  assert sweeps.stored_config_mismatch(str(workdir), changed) == (
      'optimizer.learning_rate: stored 0.1, wanted 0.05'
  )
  failed = sweeps.run_all([(str(workdir), ['python', *changed])], 1)
  assert failed == [str(workdir)]


@pytest.mark.slow
def test_every_shipped_experiment_expands(tmp_path):
  directory = os.path.join(fixtures.REPO_ROOT, 'experiments')
  for name in sorted(n for n in os.listdir(directory) if n.endswith('.py')):
    with open(os.path.join(directory, name), encoding='utf-8') as f:
      is_sweep = '\ndef runs(' in f.read()
    if is_sweep:  # The others are configs of scripts/sparse_landscape.py.
      process = sweep(os.path.join(directory, name), f'--root={tmp_path}')
      assert process.returncode == 0, (name, process.stderr[-2000:])
      lines = process.stdout.strip().splitlines()
      assert lines and all(
          ' -m rigl_jax.main --config=configs/' in line for line in lines
      ), name
      assert len(set(lines)) == len(lines), name


@pytest.mark.slow
def test_runs_in_order_skips_finished_runs_and_reports_failures(
    tmp_path, mnist_dir
):
  experiment = write_experiment(
      tmp_path / 'exp.py',
      'def runs():\n'
      '  return [dict(method="static"), dict(method="nosuch")]\n',
  )
  tiny = fixtures.set_flags(fixtures.tiny_mnist_overrides(mnist_dir))
  root = tmp_path / 'root'
  process = sweep(experiment, f'--root={root}', '--run', *tiny)
  assert process.returncode == 1
  assert '1 of 2 runs failed' in process.stdout
  # Workdirs are named by the runs' overrides and the --set values.
  (static,) = (root / 'exp').glob('method=static,batch_size=32,*')
  with open(static / 'results.json') as f:
    assert json.load(f)['topology']['method'] == 'static'
  (failed,) = (root / 'exp').glob('method=nosuch,*')
  log = (failed / 'log.txt').read_text()
  assert 'config.method: must be one of' in log
  again = sweep(
      experiment, f'--root={root}', '--run', '--only=method=static', *tiny
  )
  assert again.returncode == 0
  assert 'done already' in again.stdout


@pytest.mark.slow
def test_parallel_runs_share_the_accelerator_and_survive_a_failure(
    tmp_path, mnist_dir
):
  experiment = write_experiment(
      tmp_path / 'exp.py',
      'def runs():\n'
      '  return [dict(method="nosuch"), dict(method="static"),\n'
      '          dict(method="set")]\n',
  )
  tiny = fixtures.set_flags(fixtures.tiny_mnist_overrides(mnist_dir))
  root = tmp_path / 'root'
  process = sweep(experiment, f'--root={root}', '--run', '--parallel=2', *tiny)
  assert process.returncode == 1
  # The failure, first in the list, stopped neither of the others.
  summary, failed = process.stdout.strip().splitlines()[-2:]
  assert summary == '1 of 3 runs failed (see log.txt):'
  assert failed.startswith(f'  {root}/exp/method=nosuch,')
  for method in ('static', 'set'):
    (workdir,) = (root / 'exp').glob(f'method={method},*')
    with open(workdir / 'results.json') as f:
      assert json.load(f)['topology']['method'] == method


def test_each_parallel_run_gets_its_share_of_device_memory(monkeypatch):
  from rigl_jax import sweeps  # pylint: disable=g-import-not-at-top

  monkeypatch.delenv('XLA_PYTHON_CLIENT_MEM_FRACTION', raising=False)
  assert sweeps.run_environment(4)['XLA_PYTHON_CLIENT_MEM_FRACTION'] == (
      '0.225'
  )
  assert 'XLA_PYTHON_CLIENT_MEM_FRACTION' not in sweeps.run_environment(1)
  monkeypatch.setenv('XLA_PYTHON_CLIENT_MEM_FRACTION', '0.5')
  assert sweeps.run_environment(4)['XLA_PYTHON_CLIENT_MEM_FRACTION'] == ('0.5')


@pytest.mark.slow
def test_time_budget_checkpoints_the_running_run_and_starts_no_other(
    tmp_path, mnist_dir
):
  experiment = write_experiment(
      tmp_path / 'exp.py',
      'def runs():\n  return [dict(method="static"), dict(method="set")]\n',
  )
  overrides = {
      **fixtures.tiny_mnist_overrides(mnist_dir),
      # Longer than the budget; checkpoints only when stopped.
      'num_train_steps': 10**7,
      'checkpoint_every_steps': 10**7,
      'eval_every_steps': 10**7,
  }
  tiny = fixtures.set_flags(overrides)
  root = tmp_path / 'root'
  process = sweep(
      experiment, f'--root={root}', '--run', '--time_budget=20', *tiny
  )
  assert process.returncode == 1
  assert (
      'exit 75 (checkpointed; the same command continues it)' in process.stdout
  )
  assert 'not started (time budget spent)' in process.stdout
  (static,) = (root / 'exp').glob('method=static,*')
  (step,) = os.listdir(static / 'checkpoints')
  assert int(step) > 0
  assert not list((root / 'exp').glob('method=set,*/checkpoints'))
