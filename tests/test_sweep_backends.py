"""Sweeps on Slurm and TPU VMs, and the state of each run."""

import json
import os
import shlex
import socket
import subprocess
import textwrap
import time

import portpicker
import pytest

from rigl_jax.launch import run_status
from rigl_jax.launch import slurm
from rigl_jax.launch import tpu_vm
from tests import fixtures
from tests import slurm_cluster
from tests.test_sweeps import sweep
from tests.test_sweeps import write_experiment

MAIN = ['python', '-m', 'rigl_jax.main', '--config=configs/mnist_lenet300.py']


def fake_program(directory, name, body):
  """An executable ``directory/name`` running the shell ``body``."""
  path = directory / name
  path.write_text('#!/bin/bash\n' + textwrap.dedent(body))
  path.chmod(0o755)
  return str(path)


@pytest.fixture
def bin_dir(tmp_path):
  """A directory for stand-ins of programs, first on their PATH."""
  directory = tmp_path / 'bin'
  directory.mkdir()
  return directory


def path_with(directory):
  return {**os.environ, 'PATH': f'{directory}:{os.environ["PATH"]}'}


def runs_of(tmp_path, n):
  return [
      (
          str(tmp_path / f'run {i}'),
          MAIN
          + [
              f'--workdir={tmp_path}/run {i}',
              '--config.method=set',
              f'--config.seed={i}',
          ],
      )
      for i in range(n)
  ]


def script_of(runs, python, output_dir, **resources):
  """The sbatch script of ``runs`` with ``python`` and ``resources``."""
  return slurm.script(
      'exp',
      runs,
      slurm.Resources(**resources),
      output_dir=str(output_dir),
      repo_dir=fixtures.REPO_ROOT,
      python=python,
  )


def run_array_task(script_text, index, bin_dir, tmp_path):
  """Runs the batch script as array task ``index``; the argv it launched.

  ``bin_dir`` holds a fake ``srun``; the run's program is a fake python
  that writes its arguments, one per line.
  """
  script = tmp_path / f'task{index}.sbatch'
  script.write_text(script_text)
  process = subprocess.run(
      ['bash', str(script)],
      env={
          **path_with(bin_dir),
          'SLURM_ARRAY_TASK_ID': str(index),
          'SLURM_ARRAY_JOB_ID': '7',
      },
      capture_output=True,
      text=True,
      timeout=60,
      check=False,
  )
  assert process.returncode == 0, process.stderr
  return (tmp_path / 'argv').read_text().splitlines()


def test_sbatch_script_runs_one_run_per_array_index(tmp_path, bin_dir):
  python = fake_program(
      bin_dir, 'python', f'printf "%s\\n" "$@" > {tmp_path}/argv\n'
  )
  runs = runs_of(tmp_path, 3)
  text = script_of(
      runs,
      python,
      tmp_path / 'slurm',
      gpus_per_node=8,
      time='2:00:00',
      partition='gpu',
      extra=('--account=proj',),
  )
  directives = [
      line for line in text.splitlines() if line.startswith('#SBATCH')
  ]
  assert directives == [
      '#SBATCH --array=0-2',
      '#SBATCH --job-name=exp',
      '#SBATCH --nodes=1',
      '#SBATCH --ntasks-per-node=1',
      f'#SBATCH --output={tmp_path}/slurm/%A_%a.out',
      '#SBATCH --gpus-per-node=8',
      '#SBATCH --partition=gpu',
      '#SBATCH --time=2:00:00',
      f'#SBATCH --signal=B:TERM@{slurm.CHECKPOINT_MARGIN_S}',
      '#SBATCH --account=proj',
  ]
  # One process: no srun, no --distributed; every argument arrives whole.
  assert 'srun' not in text and '--distributed' not in text
  for i in (0, 2):
    assert run_array_task(text, i, bin_dir, tmp_path) == runs[i][1][1:]
    log = (tmp_path / f'run {i}' / 'log.txt').read_text()
    assert log == f'Slurm job 7_{i} on {socket.gethostname()}\n'
  assert not (tmp_path / 'run 1').exists()


def test_sbatch_script_starts_several_processes_with_srun(tmp_path, bin_dir):
  python = fake_program(
      bin_dir,
      'python',
      f'{{ echo "JAX_LOCAL_DEVICE_IDS=$JAX_LOCAL_DEVICE_IDS"; '
      f'printf "%s\\n" "$@"; }} > {tmp_path}/argv\n',
  )
  fake_program(
      bin_dir, 'srun', f'echo "$1 $2" > {tmp_path}/srun\nshift 2\nexec "$@"\n'
  )
  runs = runs_of(tmp_path, 2)
  text = script_of(
      runs,
      python,
      tmp_path,
      nodes=4,
      gpus_per_node=8,
      cpus_per_task=12,
      time='1-00:00:00',
  )
  assert '#SBATCH --nodes=4' in text
  assert '#SBATCH --cpus-per-task=12' in text
  # The processes get SIGTERM before the time limit, not srun.
  assert f'#SBATCH --signal=TERM@{slurm.CHECKPOINT_MARGIN_S}\n' in text
  argv = run_array_task(text, 1, bin_dir, tmp_path)
  # One process per node drives the node's 8 GPUs.
  assert argv == ['JAX_LOCAL_DEVICE_IDS=0,1,2,3,4,5,6,7'] + runs[1][1][1:] + [
      '--distributed'
  ]
  assert (tmp_path / 'srun').read_text() == (
      '--kill-on-bad-exit=1 --cpus-per-task=12\n'
  )
  # One process per GPU: JAX gives each the GPU of its local rank.
  text = script_of(
      runs, python, tmp_path, nodes=2, ntasks_per_node=8, gpus_per_node=8
  )
  assert 'JAX_LOCAL_DEVICE_IDS' not in text
  assert 'exec srun --kill-on-bad-exit=1 "${run[@]}"' in text


def test_tpu_vm_command_expands_variables_and_keeps_arguments_whole(
    tmp_path, bin_dir
):
  fake_program(bin_dir, 'gcloud', 'printf "%s\\n" "$@"\n')
  args = MAIN + ["--workdir=gs://b/runs/it's here", '--config.seed=1']
  for line, name, zone in (
      (tpu_vm.ssh_command(args), 'v4-32-a', 'us-central2-b'),
      (tpu_vm.ssh_command(args, 'my tpu', '${Z}', 'src/rigl'), 'my tpu', 'z1'),
  ):
    printed = subprocess.run(
        ['bash', '-c', line],
        env={**path_with(bin_dir), 'TPU_NAME': name, 'ZONE': zone, 'Z': zone},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert printed[:7] == [
        'compute',
        'tpus',
        'tpu-vm',
        'ssh',
        name,
        f'--zone={zone}',
        '--worker=all',
    ]
    remote = printed[7].removeprefix('--command=')
    # What each host's shell runs.
    assert shlex.split(remote) == [
        'cd',
        'src/rigl' if name == 'my tpu' else 'rigl_jax',
        '&&',
        *args,
        '--distributed',
    ]


def write_results(workdir, method, seed=0):
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(
        {
            'config': {'method': method, 'seed': seed},
            'eval': {'loss': 0.25, 'accuracy': 0.875},
            'sparsity': {'overall': 0.9},
            'num_train_steps': 12,
        },
        f,
    )


def write(path, text):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write(text)


def test_run_states_from_workdirs(tmp_path):
  def status(name, queue=None):
    workdir = str(tmp_path / name)
    return run_status.run_status(
        workdir, MAIN + ['--config.method=set', '--config.seed=0'], queue
    )

  write_results(tmp_path / 'done', 'set')
  assert status('done') == run_status.RunStatus(
      'finished', 'loss 0.25, accuracy 0.875; sparsity 0.900; 12 steps'
  )
  write_results(tmp_path / 'other', 'rigl')
  assert status('other') == run_status.RunStatus(
      'other config', 'method: stored rigl, wanted set'
  )
  assert status('fresh') == run_status.RunStatus('not started')

  write(f'{tmp_path}/live/lock', f'{os.getpid()} {socket.gethostname()}')
  live = status('live')
  assert live.state == 'running'
  assert live.detail.startswith(f'pid {os.getpid()} on {socket.gethostname()}')

  dead = subprocess.Popen(['true'])
  dead.wait()
  write(f'{tmp_path}/dead/lock', f'{dead.pid} {socket.gethostname()}')
  write(f'{tmp_path}/dead/log.txt', 'step 3\nrigl_jax: RunError: boom\n\n')
  os.makedirs(tmp_path / 'dead' / 'checkpoints' / '6')
  assert status('dead') == run_status.RunStatus(
      'failed', 'checkpoint at step 6; rigl_jax: RunError: boom'
  )

  # The run's own one-line error, not the launcher's lines after it, of
  # the last of several attempts.
  write(
      f'{tmp_path}/srun/log.txt',
      'Slurm job 3_0 on vm\nrigl_jax: ConfigError: old\n'
      'Slurm job 4_0 on vm\nrigl_jax: ConfigError: bad key\n'
      'srun: error: localhost: task 0: Exited with exit code 1\n',
  )
  assert status('srun').detail == 'rigl_jax: ConfigError: bad key'
  write(f'{tmp_path}/trace/log.txt', 'Traceback:\n  x\nValueError: y\n')
  assert status('trace').detail == 'ValueError: y'

  # A process on another host: running while its Slurm job is queued (or
  # no queue is asked), failed with a stale lock once the job has gone.
  write(f'{tmp_path}/remote/lock', '123 node7')
  write(f'{tmp_path}/remote/slurm_job', '40_2\n')
  assert status('remote').state == 'running'
  assert status('remote', {'40_2': 'RUNNING'}).state == 'running'
  stale = status('remote', {'41_0': 'PENDING'})
  assert stale.state == 'failed'
  assert stale.detail.startswith('Slurm job 40_2 has ended but left its lock')

  write(f'{tmp_path}/queued/slurm_job', '40_1\n')
  assert status('queued', {'40_1': 'PENDING'}) == run_status.RunStatus(
      'queued', 'Slurm job 40_1 PENDING'
  )
  assert status('queued', {}) == run_status.RunStatus('not started')


def test_an_unreadable_results_json_is_a_failed_run_unless_running(tmp_path):
  args = MAIN + ['--config.method=set', '--config.seed=0']
  write(f'{tmp_path}/cut/results.json', '{"config": {"method": "se')
  os.makedirs(tmp_path / 'cut' / 'checkpoints' / '12')
  failed = run_status.run_status(str(tmp_path / 'cut'), args)
  assert failed.state == 'failed'
  assert failed.detail.startswith(
      f'{tmp_path}/cut/results.json: not valid JSON (cut short or damaged): '
  )
  assert 'checkpoint at step 12' in failed.detail
  # Run again, it rewrites results.json from that checkpoint.
  write(f'{tmp_path}/cut/lock', f'{os.getpid()} {socket.gethostname()}')
  assert run_status.run_status(str(tmp_path / 'cut'), args).state == 'running'


def test_submission_records_jobs_and_skips_queued_and_finished_runs(
    tmp_path, bin_dir
):
  fake_program(
      bin_dir, 'sbatch', f'echo "$@" >> {tmp_path}/sbatch\necho "42;c1"\n'
  )
  runs = runs_of(tmp_path, 4)
  write_results(runs[0][0], 'rigl', seed=0)  # Another config: not resent.
  write(f'{runs[3][0]}/log.txt', 'Traceback\nValueError: x\n')
  states = run_status.statuses(runs, {})
  assert [s.state for s in states] == [
      'other config',
      'not started',
      'not started',
      'failed',
  ]
  indices = slurm.to_submit(states)
  assert indices == [1, 2, 3]
  job = slurm.submit('s.sbatch', runs, indices, 2, env=path_with(bin_dir))
  assert job == '42'
  assert (tmp_path / 'sbatch').read_text() == (
      '--parsable --array=1,2,3%2 s.sbatch\n'
  )
  for i in indices:
    with open(os.path.join(runs[i][0], 'slurm_job')) as f:
      assert f.read() == f'42_{i}\n'
  # Queued or running in Slurm: not submitted again; gone: submitted.
  queue = {'42_1': 'PENDING', '42_2': 'RUNNING', '42_3': 'PENDING'}
  assert slurm.to_submit(run_status.statuses(runs, queue)) == []
  del queue['42_3']
  assert slurm.to_submit(run_status.statuses(runs, queue)) == [3]


def test_slurm_backend_writes_the_script_and_submits_only_what_is_to_run(
    tmp_path, bin_dir
):
  fake_program(bin_dir, 'sbatch', f'echo "$@" >> {tmp_path}/sbatch\necho 9\n')
  fake_program(bin_dir, 'squeue', 'echo "9_0 PENDING"\necho "9_1 RUNNING"\n')
  experiment = write_experiment(
      tmp_path / 'exp.py',
      'def runs():\n  return [dict(method=m) for m in ("set", "rigl")]\n',
  )
  root = tmp_path / 'root'
  env = path_with(bin_dir)
  printed = sweep(experiment, f'--root={root}', '--backend=slurm', env=env)
  assert printed.returncode == 0, printed.stderr
  script = root / 'exp' / 'slurm' / 'sweep.sbatch'
  assert printed.stdout.splitlines() == [
      f'wrote {script} (2 runs, array indices 0-1)',
      f'sbatch {script}',
  ]
  assert f'cd {fixtures.REPO_ROOT}\n' in script.read_text()
  submitted = sweep(
      experiment, f'--root={root}', '--backend=slurm', '--submit', env=env
  )
  assert submitted.returncode == 0, submitted.stderr
  assert submitted.stdout.splitlines()[-1] == (
      f'submitted 2 runs as Slurm job 9: sbatch --array=0,1 {script}'
  )
  status = sweep(
      experiment, f'--root={root}', '--backend=slurm', '--status', env=env
  )
  assert status.stdout.splitlines() == [
      'queued       method=set  Slurm job 9_0 PENDING',
      'queued       method=rigl  Slurm job 9_1 RUNNING',
      '2 queued',
  ]
  again = sweep(
      experiment, f'--root={root}', '--backend=slurm', '--submit', env=env
  )
  assert again.stdout.splitlines()[-2:] == [
      'not submitted: 2 queued',
      'nothing to submit',
  ]
  assert (tmp_path / 'sbatch').read_text().count('--array') == 1


@pytest.mark.parametrize(
    'flags, message',
    [
        (['--submit'], '--submit goes with --backend=slurm'),
        (['--backend=slurm', '--run'], '--run goes with --backend=local'),
        (['--backend=tpu-vm', '--slurm_nodes=2'], '--slurm_nodes goes with'),
        (['--status', '--run'], '--status only reads'),
    ],
)
def test_flags_of_another_backend_stop_with_one_line(tmp_path, flags, message):
  experiment = write_experiment(
      tmp_path / 'exp.py', 'def runs():\n  return [dict(method="set")]\n'
  )
  process = sweep(experiment, f'--root={tmp_path}', *flags)
  assert process.returncode == 2
  assert process.stderr.strip().startswith(f'sweep.py: {message}')
  assert len(process.stderr.strip().splitlines()) == 1
  assert not (tmp_path / 'exp').exists()


@pytest.fixture
def local_slurm():
  """A one-node Slurm cluster on 127.0.0.1 (2 CPUs), stopped afterwards."""
  missing = slurm_cluster.missing_programs()
  if missing:
    reason = f'Slurm or MUNGE not installed (no {", ".join(missing)})'
    print(reason)
    pytest.skip(reason)
  cluster = slurm_cluster.LocalSlurm(cpus=2)
  try:
    cluster.start()
    yield cluster
  finally:
    cluster.stop()


def wait_for_job(job_id, env, timeout=300):
  """Waits until no task of Slurm job ``job_id`` is in the queue."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    if not any(j.split('_')[0] == job_id for j in slurm.queue(env)):
      return
    time.sleep(1)
  raise AssertionError(f'Slurm job {job_id} still queued after {timeout} s')


def submitted_job(process):
  assert process.returncode == 0, process.stderr
  last = process.stdout.splitlines()[-1]
  assert last.startswith('submitted '), process.stdout
  return last.split('Slurm job ')[1].split(':')[0]


@pytest.mark.slow
@pytest.mark.slurm
def test_sweep_on_a_one_node_slurm_cluster(tmp_path, mnist_dir, local_slurm):
  port = portpicker.pick_unused_port()
  env = {
      **local_slurm.env,
      # The JAX coordinator of the two-process run, on loopback only.
      'JAX_COORDINATOR_PORT': str(port),
      'JAX_COORDINATOR_BIND_ADDRESS': f'127.0.0.1:{port}',
  }
  experiment = write_experiment(
      tmp_path / 'exp.py',
      'def runs():\n'
      '  return [dict(method=m) for m in ("static", "set", "rigl")]\n',
  )
  root = tmp_path / 'root'
  tiny = fixtures.set_flags(fixtures.tiny_mnist_overrides(mnist_dir))
  args = [experiment, f'--root={root}', '--backend=slurm', *tiny]
  # Held in the queue: submitting again sends nothing.
  job = submitted_job(sweep(*args, '--submit', '--slurm_extra=--hold', env=env))
  queued = sweep(*args, '--status', env=env)
  assert queued.stdout.splitlines()[-1] == '3 queued', queued.stdout
  again = sweep(*args, '--submit', env=env)
  assert again.stdout.splitlines()[-1] == 'nothing to submit', again.stdout
  subprocess.run(['scontrol', 'release', job], env=env, check=True)
  wait_for_job(job, env)

  for method in ('static', 'set', 'rigl'):
    (workdir,) = (root / 'exp').glob(f'method={method},*')
    with open(workdir / 'results.json') as f:
      results = json.load(f)
    assert results['topology']['method'] == method
    assert results['num_train_steps'] == 12
  status = sweep(*args, '--status', env=env)
  lines = status.stdout.splitlines()
  print(status.stdout)
  assert lines[-1] == '3 finished'
  assert all(line.startswith('finished     method=') for line in lines[:3])
  assert '; sparsity 0.900; 12 steps' in lines[0]
  resubmitted = sweep(*args, '--submit', env=env)
  assert resubmitted.stdout.splitlines()[-2:] == [
      'not submitted: 3 finished',
      'nothing to submit',
  ]

  # Two processes of one run through srun, found by jax.distributed.
  two = sweep(
      experiment,
      f'--root={root}/two',
      '--backend=slurm',
      '--only=method=static',
      '--slurm_ntasks_per_node=2',
      '--submit',
      *tiny,
      env=env,
  )
  wait_for_job(submitted_job(two), env)
  (workdir,) = (root / 'two' / 'exp').glob('method=static,*')
  log = (workdir / 'log.txt').read_text()
  with open(workdir / 'results.json') as f:
    assert json.load(f)['num_processes'] == 2, log[-3000:]
  assert 'JAX process 1 of 2' in log
