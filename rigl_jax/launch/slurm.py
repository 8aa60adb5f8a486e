"""A sweep as one Slurm job array: the sbatch script, submission, the queue.

The script holds every run's command, one array index each (sbatch keeps a
copy of the script at submission, so rewriting it never changes a job
already queued). Each task appends its run's output to ``workdir/log.txt``.
A run of several processes (nodes x tasks per node > 1) starts them with
``srun`` and ``--distributed``: ``jax.distributed.initialize()`` reads the
process count, the process id and the coordinator (the first node of the
step, on a port derived from the job id) from Slurm's environment.

Submitting records each run's 'JOBID_INDEX' in ``workdir/slurm_job`` and
sends only the runs that have failed or not started (``run_status``): not
those finished, running, or whose recorded job is still in ``squeue``.
"""

import dataclasses
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Optional

from rigl_jax.launch import run_status

SCRIPT_NAME = 'sweep.sbatch'
# Seconds before the time limit at which the run gets SIGTERM: it writes a
# checkpoint and exits 75; submitting again continues it.
CHECKPOINT_MARGIN_S = 180


@dataclasses.dataclass(frozen=True)
class Resources:
  """What each array task asks of Slurm (0 or '' leaves Slurm's default)."""

  nodes: int = 1
  ntasks_per_node: int = 1
  gpus_per_node: int = 0
  cpus_per_task: int = 0
  time: str = ''
  partition: str = ''
  # Array tasks running at once (sbatch's --array=...%N).
  max_running: int = 0
  # Further '#SBATCH' options, e.g. '--account=proj' or '--mem=64G'.
  extra: tuple[str, ...] = ()

  @property
  def processes(self) -> int:
    return self.nodes * self.ntasks_per_node


def _directives(name: str, resources: Resources, output: str) -> list[str]:
  options = [
      f'--job-name={name}',
      f'--nodes={resources.nodes}',
      f'--ntasks-per-node={resources.ntasks_per_node}',
      f'--output={output}',
  ]
  if resources.gpus_per_node:
    options.append(f'--gpus-per-node={resources.gpus_per_node}')
  if resources.cpus_per_task:
    options.append(f'--cpus-per-task={resources.cpus_per_task}')
  if resources.partition:
    options.append(f'--partition={resources.partition}')
  if resources.time:
    options.append(f'--time={resources.time}')
    # One process is the batch shell itself (exec): B: signals it. srun
    # would abort its step on SIGTERM; without B: the step's processes get
    # the signal, not srun.
    batch = 'B:' * (resources.processes == 1)
    options.append(f'--signal={batch}TERM@{CHECKPOINT_MARGIN_S}')
  options.extend(resources.extra)
  return [f'#SBATCH {option}' for option in options]


def _launcher(resources: Resources) -> str:
  """How the batch shell starts the run: itself, or srun for several."""
  if resources.processes == 1:
    return 'exec'
  srun = ['exec', 'srun', '--kill-on-bad-exit=1']
  if resources.cpus_per_task:
    # srun does not inherit sbatch's --cpus-per-task (Slurm 22.05).
    srun.append(f'--cpus-per-task={resources.cpus_per_task}')
  return ' '.join(srun)


def script(
    name: str,
    runs: Sequence[tuple[str, Sequence[str]]],
    resources: Resources,
    output_dir: str,
    repo_dir: str,
    python: str = sys.executable,
) -> str:
  """The sbatch script of ``runs`` ((workdir, command) each), array 0..N-1.

  Commands run from ``repo_dir`` (config paths are relative to it) with
  ``python``; the script's own output goes to ``output_dir``.
  """
  lines = [
      '#!/bin/bash',
      f'# Sweep {name}: array task i runs run i. Written by scripts/sweep.py.',
      f'#SBATCH --array=0-{len(runs) - 1}',
      *_directives(name, resources, os.path.join(output_dir, '%A_%a.out')),
      'set -eu',
      f'cd {shlex.quote(repo_dir)}',
      f'export PYTHONPATH={shlex.quote(repo_dir)}${{PYTHONPATH:+:$PYTHONPATH}}',
  ]
  distributed = []
  if resources.processes > 1:
    distributed = ['--distributed']
    if resources.gpus_per_node > 1 and resources.ntasks_per_node == 1:
      # JAX on Slurm gives each process only the GPU of its local rank;
      # one process per node drives all of the node's GPUs.
      ids = ','.join(str(i) for i in range(resources.gpus_per_node))
      lines.append(f'export JAX_LOCAL_DEVICE_IDS={ids}')
  lines.append('case "$SLURM_ARRAY_TASK_ID" in')
  for i, (workdir, args) in enumerate(runs):
    command = shlex.join([python, *args[1:], *distributed])
    lines.append(f'  {i}) workdir={shlex.quote(workdir)}')
    lines.append(f'     run=({command}) ;;')
  lines += [
      '  *) echo "no run $SLURM_ARRAY_TASK_ID in this sweep" >&2; exit 2 ;;',
      'esac',
      'mkdir -p "$workdir"',
      'echo "Slurm job ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} on'
      ' $(hostname)" >> "$workdir/log.txt"',
      f'{_launcher(resources)} "${{run[@]}}" >> "$workdir/log.txt" 2>&1',
  ]
  return '\n'.join(lines) + '\n'


def write_script(path: str, text: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(text)


def _output(args: Sequence[str], env: Optional[Mapping[str, str]]) -> str:
  """The stdout of a Slurm command; CalledProcessError if it fails."""
  return subprocess.run(
      args, capture_output=True, text=True, check=True, env=env, timeout=120
  ).stdout


def queue(env: Optional[Mapping[str, str]] = None) -> dict[str, str]:
  """{'JOBID_INDEX' or 'JOBID': state} of every job in Slurm's queue."""
  output = _output(['squeue', '--noheader', '--array', '--format=%i %T'], env)
  return dict(line.split(None, 1) for line in output.splitlines() if line)


def to_submit(states: Sequence[run_status.RunStatus]) -> list[int]:
  """Indices of the runs that neither finished nor are queued or running."""
  return [i for i, s in enumerate(states) if s.state in run_status.TO_RUN]


def array_spec(indices: Sequence[int], max_running: int = 0) -> str:
  """sbatch's --array value: '0,2,5', with '%N' when throttled."""
  spec = ','.join(str(i) for i in indices)
  return f'{spec}%{max_running}' if max_running else spec


def submit(
    script_path: str,
    runs: Sequence[tuple[str, Sequence[str]]],
    indices: Sequence[int],
    max_running: int = 0,
    env: Optional[Mapping[str, str]] = None,
) -> str:
  """Submits the array tasks ``indices`` of the script; the job id.

  Each submitted run's workdir records its 'JOBID_INDEX'.
  """
  output = _output(
      [
          'sbatch',
          '--parsable',
          f'--array={array_spec(indices, max_running)}',
          script_path,
      ],
      env,
  )
  job_id = output.strip().split(';')[0]  # '<id>[;<cluster>]'
  for i in indices:
    workdir = runs[i][0]
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, run_status.SLURM_JOB_FILE)
    with open(path, 'w', encoding='utf-8') as f:
      f.write(f'{job_id}_{i}\n')
  return job_id
