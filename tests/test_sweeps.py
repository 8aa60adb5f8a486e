"""The sweep tool: expansion, naming, filtering, running and resuming."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

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


@pytest.mark.parametrize(
    'content',
    [
        # The first 200 bytes of a finished run's results.json.
        json.dumps(
            {
                'config': {'method': 'rigl', 'sparsity': 0.9},
                'eval': {'accuracy': 0.97, 'loss': 0.1},
                'history': {'train': [{'step': s} for s in range(50)]},
            },
            indent=2,
        )[:200],
        '{"eval": {}}',
    ],
    ids=['cut_short', 'no_config'],
)
def test_an_unreadable_results_json_fails_its_run_and_the_sweep_goes_on(
    tmp_path, capsys, content
):
  from rigl_jax import sweeps  # pylint: disable=g-import-not-at-top

  args = ['python', '--config.method=rigl']
  finished, unreadable, new = (
      tmp_path / name for name in ('finished', 'unreadable', 'new')
  )
  for workdir, text in (
      (finished, json.dumps({'config': {'method': 'rigl'}})),
      (unreadable, content),
  ):
    workdir.mkdir()
    (workdir / 'results.json').write_text(text)
  failed = sweeps.run_all(
      [
          (str(unreadable), args),
          (str(finished), args),
          (str(new), ['python', '-c', 'pass']),
      ],
      1,
  )
  assert failed == [str(unreadable)]
  out = capsys.readouterr().out
  assert 'Traceback' not in out
  (line,) = [line for line in out.splitlines() if str(unreadable) in line]
  assert line.startswith(f'[1/3] {unreadable / "results.json"}: ')
  assert 'not run' in line
  assert f'[2/3] done already: {finished}' in out
  assert '[3/3] exit 0 after ' in out


# A stand-in for a run: exits 75 on a stopping signal, naming it.
_CHECKPOINTING_RUN = """
import signal, sys, time
def stop(signum, frame):
  print('stopped by', signal.Signals(signum).name, flush=True)
  sys.exit(75)
for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
  signal.signal(signum, stop)
open(sys.argv[1], 'w').close()  # Started.
time.sleep(120)
"""


@pytest.mark.parametrize('signum', ['SIGTERM', 'SIGINT', 'SIGHUP'])
def test_a_signal_to_the_sweep_goes_to_its_runs_and_starts_no_other(
    tmp_path, capsys, monkeypatch, signum
):
  from rigl_jax import errors  # pylint: disable=g-import-not-at-top
  from rigl_jax import sweeps  # pylint: disable=g-import-not-at-top

  signum = getattr(signal, signum)
  # The test's own output must stay where it is.
  monkeypatch.setattr(sweeps.preemption, 'detach_from_terminal', lambda: None)
  started = tmp_path / 'started'
  previous = signal.getsignal(signum)

  def signal_once_started():
    while not started.exists():
      time.sleep(0.01)
    os.kill(os.getpid(), signum)

  threading.Thread(target=signal_once_started, daemon=True).start()
  first, second = tmp_path / 'first', tmp_path / 'second'
  with pytest.raises(errors.Preempted) as info:
    sweeps.run_all(
        [
            (str(first), ['python', '-c', _CHECKPOINTING_RUN, str(started)]),
            (str(second), ['python', '-c', 'pass']),
        ],
        1,
    )
  name = signal.Signals(signum).name
  assert info.value.exit_code == 75
  assert str(info.value).startswith(f'stopped by {name}: ')
  out = capsys.readouterr().out
  assert '[1/2] exit 75 (checkpointed; the same command continues it)' in out
  assert f'[2/2] not started ({name}): {second}' in out
  assert f'stopped by {name}' in (first / 'log.txt').read_text()
  assert signal.getsignal(signum) is previous


@pytest.mark.slow
def test_sigterm_to_the_sweep_checkpoints_its_run_and_exits_75(
    tmp_path, mnist_dir
):
  from rigl_jax.training import workdir as workdir_lib  # pylint: disable=g-import-not-at-top

  experiment = write_experiment(
      tmp_path / 'exp.py',
      'def runs():\n  return [dict(method="static"), dict(method="set")]\n',
  )
  overrides = {
      **fixtures.tiny_mnist_overrides(mnist_dir),
      # Runs until stopped; checkpoints only when stopped.
      'num_train_steps': 10**7,
      'log_every_steps': 10**7,
      'checkpoint_every_steps': 10**7,
      'eval_every_steps': 10**7,
  }
  root = tmp_path / 'root'
  process = subprocess.Popen(
      [sys.executable, SWEEP, experiment, f'--root={root}', '--run']
      + fixtures.set_flags(overrides),
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
      cwd=fixtures.REPO_ROOT,
  )
  run_pid = None
  try:
    deadline = time.time() + 600
    while run_pid is None:  # Training, once the run logs its compilation.
      assert process.poll() is None and time.time() < deadline
      for log in (root / 'exp').glob('method=static,*/log.txt'):
        if 'Compiled the steps' in log.read_text():
          run_pid = int((log.parent / 'lock').read_text().split()[0])
      time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=300)
  finally:
    process.kill()
    if run_pid and workdir_lib.process_alive(run_pid):
      os.kill(run_pid, signal.SIGKILL)
      pytest.fail('the sweep left its run running')
  assert process.returncode == 75, err[-3000:]
  last_line = err.strip().splitlines()[-1]
  assert last_line.startswith('sweep.py: Preempted: stopped by SIGTERM: ')
  assert '[1/2] exit 75 (checkpointed; the same command continues it)' in out
  assert '[2/2] not started (SIGTERM)' in out
  (workdir,) = (root / 'exp').glob('method=static,*')
  (step,) = os.listdir(workdir / 'checkpoints')
  assert int(step) > 0
  assert not (workdir / 'lock').exists()
