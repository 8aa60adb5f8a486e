"""A run's workdir: its path, its lock, whether it is writable or finished.

Checked before any data is loaded or anything compiled, so a bad workdir
costs seconds, and a second process on the same workdir stops at once
instead of overwriting the first one's checkpoints.
"""

import os
import socket
from typing import Any, Optional

from absl import logging
import jax

from rigl_jax import errors
from rigl_jax.training import checkpoints as checkpoints_lib
from rigl_jax.training import identity as identity_lib
from rigl_jax.training import results_file

LOCK_NAME = 'lock'


def is_local(path: str) -> bool:
  return '://' not in path


def resolve(workdir: Optional[str]) -> str:
  """The workdir as an absolute path (orbax needs one); '' is an error."""
  if not workdir or not str(workdir).strip():
    raise errors.WorkdirError('--workdir must name a directory, got ""')
  workdir = str(workdir)
  return os.path.abspath(workdir) if is_local(workdir) else workdir


def check_writable(workdir: str) -> None:
  """Creates the workdir and writes a file there, or names the cause."""
  if not is_local(workdir):
    return  # Remote storage: the first checkpoint will tell.
  checkpoints = os.path.join(workdir, 'checkpoints')
  if os.path.exists(checkpoints) and not os.path.isdir(checkpoints):
    raise errors.WorkdirError(
        f'{checkpoints} is a file; the checkpoints need that name'
    )
  # Named per process: the processes of a multi-host run probe together.
  probe = os.path.join(
      workdir, f'.write-test-{socket.gethostname()}-{os.getpid()}'
  )
  try:
    os.makedirs(workdir, exist_ok=True)
    with open(probe, 'w', encoding='utf-8') as f:
      f.write('rigl_jax')
    os.remove(probe)
  except OSError as e:
    raise errors.WorkdirError(
        f'cannot write to {workdir}: {e.strerror or e}'
    ) from None


def process_alive(pid: int) -> bool:
  """Whether a process with this pid runs on this host."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # Another user's process.
  return True


class Lock:
  """Holds ``workdir/lock`` (pid and host) for the life of a run.

  A lock left by a dead process on this host is taken over; one held by a
  live process, or by another host, is an error naming its holder.
  """

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK_NAME)
    self._held = False
    self._owner = f'{os.getpid()} {socket.gethostname()}'

  def _holder(self) -> tuple[Optional[int], str]:
    try:
      with open(self.path, encoding='utf-8') as f:
        pid, _, host = f.read().strip().partition(' ')
      return int(pid), host
    except (OSError, ValueError):
      return None, ''

  def __enter__(self) -> 'Lock':
    # One run, several processes (one per accelerator, or per host sharing
    # a file system): the first one holds the lock for all.
    if not is_local(self.path) or jax.process_index() != 0:
      return self
    for _ in range(2):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
      except FileExistsError:
        pid, host = self._holder()
        if (
            pid is not None
            and host == socket.gethostname()
            and not process_alive(pid)
        ):
          logging.warning('Taking over the lock of dead process %d.', pid)
          os.remove(self.path)
          continue
        raise errors.WorkdirError(
            f'{os.path.dirname(self.path)} is in use by process {pid} on '
            f'{host or "an unknown host"} (lock file {self.path}); use '
            'another --workdir, or delete the lock if that run is gone'
        ) from None
      with os.fdopen(fd, 'w', encoding='utf-8') as f:
        f.write(self._owner)
      self._held = True
      return self
    raise errors.WorkdirError(f'could not take the lock {self.path}')

  def __exit__(self, *exc_info) -> None:
    if self._held and self._holder() == (
        os.getpid(),
        socket.gethostname(),
    ):
      os.remove(self.path)
    self._held = False


# What a rerun of a finished run reads of its results.json.
FINISHED_KEYS = (
    'resolved_config',
    'num_train_steps',
    'eval',
    'sparsity.overall',
)


def finished_results(
    workdir: str,
    identity: identity_lib.Identity,
    num_train_steps: int,
    allow_config_change: bool = False,
) -> Optional[dict[str, Any]]:
  """results.json of a run of this identity that has finished, or None.

  None also when the run asks for more steps than it ran (it is extended),
  and when results.json cannot be read (logged): the run resumes from its
  last checkpoint, which rewrites it.

  Raises:
    errors.ResumeError: the results belong to another config (naming every
      key), unless ``allow_config_change``.
  """
  path = os.path.join(workdir, results_file.NAME)
  if not os.path.exists(path):
    return None
  try:
    results = results_file.read(path, FINISHED_KEYS)
  except errors.ResultsFileError as e:
    # Written last, from the state the last checkpoint holds: the run
    # resumes there and writes it again (evaluating, not training).
    logging.warning(
        '%s; the run continues from its last checkpoint, which rewrites it.',
        e,
    )
    return None
  changes = identity_lib.changes(
      identity_lib.of_config(results['resolved_config']), identity
  )
  if changes and not allow_config_change:
    raise checkpoints_lib.resume_error(workdir, changes)
  if changes or results.get('num_train_steps') != num_train_steps:
    return None
  return results
