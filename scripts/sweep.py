r"""Expands a sweep from experiments/ into runs: prints, runs or submits them.

An experiment file defines ``CONFIG`` (a config path) and ``runs()``, a list
of dicts of config overrides (a run's 'config' key replaces ``CONFIG``).
Every run gets its own workdir under ``--root``, named by its overrides.

  # Print the commands:
  python scripts/sweep.py experiments/table2_resnet50.py --root=/data/sweeps

  # Run them here; finished runs are skipped, so running the same command
  # again continues an interrupted sweep:
  python scripts/sweep.py experiments/mnist_lenet300.py --root=/tmp/sweeps \
      --set=dataset.local_dir=../shared/data/mnist --run

  # Four runs at a time on one accelerator, each with a quarter of its memory:
  python scripts/sweep.py experiments/figure_wrn22_sparsity.py \
      --root=/tmp/sweeps --run --parallel=4

  # One Slurm job array, a task per run, written to ROOT/EXPERIMENT/slurm/;
  # --submit submits the runs that are neither finished nor in the queue
  # (the same command again resubmits the rest):
  python scripts/sweep.py experiments/table2_resnet50.py --root=/shared/sweeps \
      --backend=slurm --slurm_nodes=2 --slurm_gpus_per_node=8 \
      --slurm_time=24:00:00 --slurm_partition=gpu --submit

  # One gcloud command per run, each on every host of a TPU VM slice:
  python scripts/sweep.py experiments/table2_resnet50.py \
      --root=gs://BUCKET/runs --backend=tpu-vm --tpu_name=my-v4-32 \
      --tpu_zone=us-central2-b

  # Each run's state (finished, running, queued, failed, not started):
  python scripts/sweep.py experiments/table2_resnet50.py \
      --root=/shared/sweeps --status [--backend=slurm]

``--set=key=value`` adds an override to every run; ``--only=key=value``
keeps the runs with that override (one that keeps none is an error listing
the values the key takes). The logic lives in ``rigl_jax.sweeps``
and ``rigl_jax.launch``. With ``--run`` a failed run does not stop the
others; the failures are listed at the end and the exit code is 1.
SIGTERM, Ctrl-C or SIGHUP to the sweep goes on to the running runs: each
writes a checkpoint and stops, no other run starts, and the sweep exits 75
(the same command continues it); a second signal aborts the runs.
"""

import collections
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from typing import NoReturn

from absl import app
from absl import flags

from rigl_jax import command_line
from rigl_jax import sweeps
from rigl_jax.launch import run_status
from rigl_jax.launch import slurm
from rigl_jax.launch import tpu_vm

_ROOT = flags.DEFINE_string('root', None, "Directory for the runs' workdirs.")
_BACKEND = flags.DEFINE_enum(
    'backend',
    'local',
    ['local', 'slurm', 'tpu-vm'],
    'local: print the commands or --run them here; slurm: write a job '
    'array script (--submit submits it); tpu-vm: print a gcloud command '
    'per run.',
)
_RUN = flags.DEFINE_bool('run', False, 'Run the commands here.')
_SUBMIT = flags.DEFINE_bool(
    'submit', False, 'With --backend=slurm: sbatch the runs still to run.'
)
_STATUS = flags.DEFINE_bool(
    'status', False, "Print each run's state, read from its workdir."
)
_SET = flags.DEFINE_multi_string('set', [], 'key=value added to every run.')
_ONLY = flags.DEFINE_multi_string('only', [], 'Keep runs with key=value.')
_MAX_RUNS = flags.DEFINE_integer(
    'max_runs', 0, 'Keep only the first N runs (0: all).'
)
_PARALLEL = flags.DEFINE_integer(
    'parallel',
    1,
    'With --run: runs at once, each with 1/N of the accelerator memory.',
)
_TIME_BUDGET = flags.DEFINE_float(
    'time_budget',
    None,
    'With --run: seconds after which the runs still going write a '
    'checkpoint and stop (the same command continues them).',
)
_SLURM_NODES = flags.DEFINE_integer('slurm_nodes', 1, 'Nodes per run.')
_SLURM_NTASKS_PER_NODE = flags.DEFINE_integer(
    'slurm_ntasks_per_node',
    1,
    'Processes per node; more than one process in all starts them with '
    'srun and --distributed.',
)
_SLURM_GPUS_PER_NODE = flags.DEFINE_integer(
    'slurm_gpus_per_node', 0, 'GPUs per node (0: none asked).'
)
_SLURM_CPUS_PER_TASK = flags.DEFINE_integer(
    'slurm_cpus_per_task', 0, 'CPUs per process (0: the default).'
)
_SLURM_TIME = flags.DEFINE_string(
    'slurm_time',
    '',
    "Time limit per run (sbatch --time, e.g. '24:00:00'); the run "
    f'checkpoints {slurm.CHECKPOINT_MARGIN_S} s before it.',
)
_SLURM_PARTITION = flags.DEFINE_string('slurm_partition', '', 'Partition.')
_SLURM_MAX_RUNNING = flags.DEFINE_integer(
    'slurm_max_running', 0, 'Array tasks running at once (0: no limit).'
)
_SLURM_EXTRA = flags.DEFINE_multi_string(
    'slurm_extra',
    [],
    "Another '#SBATCH' option, e.g. --slurm_extra=--account=proj.",
)
_TPU_NAME = flags.DEFINE_string(
    'tpu_name', '$TPU_NAME', 'TPU VM name (or a $VARIABLE for the shell).'
)
_TPU_ZONE = flags.DEFINE_string(
    'tpu_zone', '$ZONE', 'TPU VM zone (or a $VARIABLE for the shell).'
)
_TPU_REPO_DIR = flags.DEFINE_string(
    'tpu_repo_dir',
    'rigl_jax',
    "The repository's directory on the TPU VMs (relative: to the home).",
)
flags.mark_flag_as_required('root')

# Flags that only one backend or mode reads.
_OWN_FLAGS = {
    'slurm': [f for f in flags.FLAGS if f.startswith('slurm_')] + ['submit'],
    'tpu-vm': [f for f in flags.FLAGS if f.startswith('tpu_')],
    'local': ['run', 'parallel', 'time_budget'],
}


def _usage_error(message: str) -> NoReturn:
  """One line on stderr (not absl's page of help) and exit status 2."""
  print(f'sweep.py: {message}', file=sys.stderr)
  sys.exit(2)


def _check_flags() -> None:
  """Stops at a flag that the chosen backend or mode does not read."""
  backend = _BACKEND.value
  for owner, names in _OWN_FLAGS.items():
    for name in names:
      if owner != backend and flags.FLAGS[name].present:
        _usage_error(f'--{name} goes with --backend={owner}')
  if _STATUS.value and (_RUN.value or _SUBMIT.value):
    _usage_error('--status only reads: not with --run or --submit')
  if _PARALLEL.value < 1:
    _usage_error(f'--parallel must be >= 1, got {_PARALLEL.value}')


def _print_status(
    runs: list[tuple[str, list[str]]], states: list[run_status.RunStatus]
) -> None:
  for (workdir, _), status in zip(runs, states):
    detail = f'  {status.detail}' if status.detail else ''
    print(f'{status.state:<12} {os.path.basename(workdir)}{detail}')
  counts = collections.Counter(s.state for s in states)
  print(', '.join(f'{n} {state}' for state, n in counts.items()))


def _slurm(experiment: str, runs: list[tuple[str, list[str]]]) -> None:
  """Writes the job array script; with --submit, submits what is to run."""
  name = sweeps.experiment_name(experiment)
  output_dir = os.path.abspath(os.path.join(_ROOT.value, name, 'slurm'))
  path = os.path.join(output_dir, slurm.SCRIPT_NAME)
  resources = slurm.Resources(
      nodes=_SLURM_NODES.value,
      ntasks_per_node=_SLURM_NTASKS_PER_NODE.value,
      gpus_per_node=_SLURM_GPUS_PER_NODE.value,
      cpus_per_task=_SLURM_CPUS_PER_TASK.value,
      time=_SLURM_TIME.value,
      partition=_SLURM_PARTITION.value,
      max_running=_SLURM_MAX_RUNNING.value,
      extra=tuple(_SLURM_EXTRA.value),
  )
  slurm.write_script(
      path, slurm.script(name, runs, resources, output_dir, os.getcwd())
  )
  print(
      f'wrote {path} ({len(runs)} run{"s" * (len(runs) > 1)}, array '
      f'indices 0-{len(runs) - 1})'
  )
  if not _SUBMIT.value:
    print(f'sbatch {shlex.quote(path)}')
    return
  states = run_status.statuses(runs, slurm.queue())
  indices = slurm.to_submit(states)
  skipped = collections.Counter(
      s.state for i, s in enumerate(states) if i not in indices
  )
  if skipped:
    print('not submitted:', ', '.join(f'{n} {s}' for s, n in skipped.items()))
  if not indices:
    print('nothing to submit')
    return
  job_id = slurm.submit(path, runs, indices, resources.max_running)
  spec = slurm.array_spec(indices, resources.max_running)
  print(
      f'submitted {len(indices)} run{"s" * (len(indices) > 1)} as Slurm '
      f'job {job_id}: '
      f'sbatch --array={spec} {shlex.quote(path)}'
  )


def _local(runs: list[tuple[str, list[str]]]) -> None:
  """Prints the commands, or with --run runs them here."""
  if not _RUN.value:
    for _, args in runs:
      print(shlex.join(args))
    return
  failed = sweeps.run_all(runs, _PARALLEL.value, _TIME_BUDGET.value)
  if failed:
    print(
        f'{len(failed)} of {len(runs)} runs failed (see log.txt):',
        *failed,
        sep='\n  ',
    )
    sys.exit(1)


def main(argv: Sequence[str]) -> None:
  if len(argv) != 2:
    raise app.UsageError('usage: sweep.py EXPERIMENT.py --root=DIR [--run]')
  _check_flags()
  runs = sweeps.expand(
      argv[1],
      _ROOT.value,
      sweeps.parse_pairs(_SET.value, '--set'),
      sweeps.parse_pairs(_ONLY.value, '--only'),
  )
  if _MAX_RUNS.value:
    runs = runs[: _MAX_RUNS.value]
  if _STATUS.value or _BACKEND.value == 'slurm':
    try:
      if _STATUS.value:
        queued = slurm.queue() if _BACKEND.value == 'slurm' else None
        _print_status(runs, run_status.statuses(runs, queued))
      else:
        _slurm(argv[1], runs)
    except (OSError, subprocess.CalledProcessError) as e:
      # squeue or sbatch missing or refusing: their message, on one line.
      detail = getattr(e, 'stderr', None) or e
      sys.exit(f'sweep.py: {" ".join(str(detail).split())}')
  elif _BACKEND.value == 'tpu-vm':
    for _, args in runs:
      print(
          tpu_vm.ssh_command(
              args, _TPU_NAME.value, _TPU_ZONE.value, _TPU_REPO_DIR.value
          )
      )
  else:
    _local(runs)


if __name__ == '__main__':
  command_line.run(main, 'sweep.py')
