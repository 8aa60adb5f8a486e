"""Where a run stands, read from its workdir alone.

- finished: results.json holds the run's config (its headline numbers
  shown); ``other config`` when it holds another run's.
- running: ``workdir/lock`` names a live process on this host, or a process
  on another host (whose liveness cannot be checked from here: the lock
  goes when the run exits, short of SIGKILL) unless the run's Slurm job
  has left the queue, which ends every process of the job.
- queued: the Slurm job recorded in ``workdir/slurm_job`` is in the queue
  and no process holds the lock yet.
- failed: none of the above, and the run has written its log or a
  checkpoint, or a results.json that cannot be read; shown with its last
  error line (a preempted run's says so, and the same command continues
  it).
- not started: nothing of the above.
"""

import dataclasses
import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Optional

from rigl_jax import errors
from rigl_jax import sweeps
from rigl_jax.training import results_file
from rigl_jax.training import workdir as workdir_lib

FINISHED = 'finished'
OTHER_CONFIG = 'other config'
RUNNING = 'running'
QUEUED = 'queued'
FAILED = 'failed'
NOT_STARTED = 'not started'

# The states in which running the command again is what the run needs.
TO_RUN = (FAILED, NOT_STARTED)

# The Slurm job of a submitted run ('JOBID_INDEX'), written at submission.
SLURM_JOB_FILE = 'slurm_job'
LOG_FILE = 'log.txt'


@dataclasses.dataclass(frozen=True)
class RunStatus:
  state: str
  detail: str = ''


def headline(results: Mapping) -> str:
  """The eval metrics, sparsity and steps of a results.json."""
  metrics = ', '.join(
      f'{key} {value:.4g}'
      for key, value in results.get('eval', {}).items()
      if isinstance(value, (int, float))
  )
  sparsity = results.get('sparsity', {}).get('overall')
  parts = [metrics] if metrics else []
  if sparsity is not None:
    parts.append(f'sparsity {sparsity:.3f}')
  parts.append(f'{results.get("num_train_steps")} steps')
  return '; '.join(parts)


def _read(path: str) -> Optional[str]:
  try:
    with open(path, encoding='utf-8', errors='replace') as f:
      return f.read()
  except OSError:
    return None


def _last_message(log: str) -> str:
  """The gist of a log's last attempt: its last 'rigl_jax: ' line.

  That is the run's one-line error; launchers (srun) write their own lines
  after it. Each Slurm attempt starts with a 'Slurm job ' line. Without a
  'rigl_jax: ' line (a traceback), the last line.
  """
  lines = [line.strip() for line in log.splitlines() if line.strip()]
  starts = [i for i, line in enumerate(lines) if line.startswith('Slurm job ')]
  attempt = lines[starts[-1] :] if starts else lines
  ours = [line for line in attempt if line.startswith('rigl_jax: ')]
  return (ours or attempt or ['empty log'])[-1]


def _age(path: str) -> str:
  try:
    seconds = time.time() - os.path.getmtime(path)
  except OSError:
    return 'no log yet'
  return f'log written {seconds:.0f} s ago'


def _checkpoint_steps(workdir: str) -> list[int]:
  directory = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(directory):
    return []
  return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def run_status(
    workdir: str,
    args: Sequence[str],
    queue: Optional[Mapping[str, str]] = None,
) -> RunStatus:
  """The state of the run of command ``args`` in ``workdir``.

  Args:
    workdir: the run's workdir.
    args: its ``rigl_jax.main`` command (whose config results.json must hold).
    queue: Slurm job id ('JOBID_INDEX') -> Slurm state of every job in the
      queue, or None where no queue is asked.
  """
  results_path = os.path.join(workdir, results_file.NAME)
  unreadable = ''
  if os.path.exists(results_path):
    try:
      mismatch = sweeps.stored_config_mismatch(workdir, args)
      results = results_file.read(results_path)
    except errors.ResultsFileError as e:
      # Failed unless running: the command, run again, resumes from the
      # last checkpoint and writes results.json again.
      unreadable = f'{e}; '
    else:
      if mismatch:
        return RunStatus(OTHER_CONFIG, mismatch)
      return RunStatus(FINISHED, headline(results))
  log_path = os.path.join(workdir, LOG_FILE)
  job = (_read(os.path.join(workdir, SLURM_JOB_FILE)) or '').strip()
  job_queued = bool(job) and queue is not None and job in queue
  lock = (_read(os.path.join(workdir, workdir_lib.LOCK_NAME)) or '').strip()
  pid_text, _, host = lock.partition(' ')
  if pid_text.isdigit():
    where = f'pid {pid_text} on {host}, {_age(log_path)}'
    if host == socket.gethostname():
      # The lock's own rule of liveness.
      if workdir_lib.process_alive(int(pid_text)):
        return RunStatus(RUNNING, where)
    elif job_queued or not job or queue is None:
      return RunStatus(RUNNING, where)
    else:
      return RunStatus(
          FAILED,
          f'Slurm job {job} has ended but left its lock ({where}): delete '
          f'{os.path.join(workdir, workdir_lib.LOCK_NAME)} to run it again',
      )
  if job_queued:
    return RunStatus(QUEUED, f'Slurm job {job} {queue[job]}')
  log = _read(log_path)
  steps = _checkpoint_steps(workdir)
  if log is None and not steps and not unreadable:
    return RunStatus(NOT_STARTED)
  checkpoint = f'checkpoint at step {steps[-1]}; ' if steps else ''
  return RunStatus(FAILED, unreadable + checkpoint + _last_message(log or ''))


def statuses(
    runs: Sequence[tuple[str, Sequence[str]]],
    queue: Optional[Mapping[str, str]] = None,
) -> list[RunStatus]:
  """The state of each (workdir, command) of a sweep."""
  return [run_status(workdir, args, queue) for workdir, args in runs]
