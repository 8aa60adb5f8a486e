"""Several JAX processes as one run: starting them and keeping them agreed.

Every process runs the same command. What a process decides alone (its
flags, the workdir lock, its copy of the masks) is compared or shared, so
a mismatch stops every process with the same line instead of leaving the
others waiting in a collective. A peer that dies mid-run makes the next
collective fail within seconds; ``main`` then ends the process at once
(``exit_now``), since JAX's shutdown would wait for the dead peer.
"""

import hashlib
import json
import os
import sys
import threading
from typing import Any, Callable, Optional

from absl import logging
import jax
from flax import traverse_util
from jax.experimental import multihost_utils
import numpy as np

from rigl_jax import errors
from rigl_jax.training import checkpoints

# Addresses whose coordinator binds where it listens, not on every interface.
_LOOPBACK_HOSTS = ('127.0.0.1', 'localhost', '::1')

# How much longer JAX may wait than our own deadline: JAX aborts the process
# with a stack trace when its own timeout passes, ours prints one line.
_JAX_TIMEOUT_MARGIN_S = 30


class DistributedError(errors.RunError):
  """The processes of a run could not start together, or lost a peer."""


def _check_flags(
    coordinator_address: Optional[str],
    num_processes: Optional[int],
    process_id: Optional[int],
) -> None:
  given = [v is not None for v in (coordinator_address, num_processes)]
  given.append(process_id is not None)
  if any(given) and not all(given):
    raise errors.ConfigError(
        '--coordinator_address, --num_processes and --process_id go '
        'together: give all three, or none where the cluster is detected '
        '(Cloud TPU, Slurm, Open MPI)'
    )
  if num_processes is not None and num_processes < 1:
    raise errors.ConfigError(f'--num_processes={num_processes} must be >= 1')
  if process_id is not None and not 0 <= process_id < num_processes:
    raise errors.ConfigError(
        f'--process_id={process_id} is out of range for '
        f'--num_processes={num_processes} (0 to {num_processes - 1})'
    )


def _host(address: str) -> str:
  return address.rpartition(':')[0].strip('[]')


def initialize(
    coordinator_address: Optional[str],
    num_processes: Optional[int],
    process_id: Optional[int],
    timeout_s: int,
) -> None:
  """``jax.distributed.initialize``, or one line within ``timeout_s``.

  A coordinator on a loopback address listens there only. If the processes
  have not all joined after ``timeout_s`` (an unreachable coordinator, a
  process not started, a --num_processes larger than the processes
  started), the process prints why and exits 1.
  """
  _check_flags(coordinator_address, num_processes, process_id)
  bind_address = (
      coordinator_address
      if coordinator_address and _host(coordinator_address) in _LOOPBACK_HOSTS
      else None
  )
  joined = threading.Event()

  def give_up() -> None:
    if joined.wait(timeout_s):
      return
    where = coordinator_address or 'the detected coordinator'
    exit_now(
        DistributedError(
            f"the run's processes did not all join within {timeout_s} s "
            f'through the coordinator at {where}: start every process with '
            'the same --coordinator_address and --num_processes and its own '
            '--process_id (process 0 runs the coordinator)'
        )
    )

  threading.Thread(target=give_up, daemon=True).start()
  jax.distributed.initialize(
      coordinator_address=coordinator_address,
      num_processes=num_processes,
      process_id=process_id,
      initialization_timeout=timeout_s + _JAX_TIMEOUT_MARGIN_S,
      coordinator_bind_address=bind_address,
  )
  joined.set()


def exit_now(error: errors.RunError) -> None:
  """Prints ``error`` as the last line and exits without JAX's shutdown.

  JAX's shutdown waits at a barrier for every process; with a peer gone it
  would wait for the peer's heartbeat timeout and then abort.
  """
  logging.flush()
  message = ' '.join(str(error).split())
  print(f'rigl_jax: {type(error).__name__}: {message}', file=sys.stderr)
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(getattr(error, 'exit_code', 1))  # pylint: disable=protected-access


def peer_lost(error: Exception, workdir: str) -> DistributedError:
  """The error of a collective that failed because a peer went away."""
  cause = str(error).strip().splitlines()[0] if str(error).strip() else ''
  return DistributedError(
      f'process {jax.process_index()} lost a peer process ({cause[:200]}); '
      f'the checkpoints in {os.path.join(workdir, "checkpoints")} hold the '
      'run up to the last one: run every process again to resume'
  )


def _broadcast_text(text: str) -> str:
  """Process 0's ``text``, on every process."""
  encoded = np.frombuffer(text.encode(), np.uint8)
  length = int(multihost_utils.broadcast_one_to_all(np.int32(len(encoded))))
  padded = np.zeros(length, np.uint8)
  padded[: min(length, len(encoded))] = encoded[:length]
  return bytes(multihost_utils.broadcast_one_to_all(padded)).decode()


def _digests(text: str) -> np.ndarray:
  """Every process's SHA-256 of its ``text``: [processes, 32]."""
  digest = np.frombuffer(hashlib.sha256(text.encode()).digest(), np.uint8)
  return np.asarray(multihost_utils.process_allgather(digest))


def _unlike_process_0(text: str) -> list[int]:
  """The processes whose ``text`` differs from process 0's."""
  digests = _digests(text)
  return [i for i in range(len(digests)) if (digests[i] != digests[0]).any()]


def _flat(command_json: str) -> dict[str, Any]:
  return traverse_util.flatten_dict(json.loads(command_json), sep='.')


def check_same_command(command: dict[str, Any]) -> None:
  """Raises ``ConfigError`` on every process if their commands differ.

  Args:
    command: what defines the run on this process: its config, workdir and
      flags, as JSON-serializable values.
  """
  if jax.process_count() == 1:
    return
  text = json.dumps(command, sort_keys=True, default=str)
  others = _unlike_process_0(text)
  if not others:
    return
  reference = _flat(_broadcast_text(text))
  if jax.process_index() in others:
    mine = _flat(text)
    differences = [
        f'{key}={mine.get(key, "absent")} (process 0: '
        f'{reference.get(key, "absent")})'
        for key in sorted(set(mine) | set(reference))
        if mine.get(key, 'absent') != reference.get(key, 'absent')
    ]
    detail = 'this process has ' + ', '.join(differences)
  else:
    detail = 'see their own lines'
  raise errors.ConfigError(
      f'processes {others} were started with another config or flags than '
      f'process 0 ({detail}); start every process with the same command'
  )


def decide_on_first(decision: Callable[[], None]) -> None:
  """Runs ``decision`` on process 0; its error is raised on every process.

  For what one process decides for all (taking the workdir lock).
  """
  if jax.process_count() == 1:
    decision()
    return
  message = ''
  if jax.process_index() == 0:
    try:
      decision()
    except errors.RunError as e:
      message = json.dumps([type(e).__name__, str(e)])
  message = _broadcast_text(message)
  if message:
    name, text = json.loads(message)
    error_class = getattr(errors, name, errors.RunError)
    if jax.process_index() != 0:
      text += ' (as process 0 found)'
    raise error_class(text)


def check_replicas_agree(what: str, tree: Any, step: int) -> None:
  """Raises ``DistributedError`` everywhere if the copies of ``tree`` differ.

  Replicated state is computed on every process; any nondeterminism would
  let the copies drift apart silently. With one process nothing is read
  back from the devices.
  """
  if jax.process_count() == 1:
    return
  checksum = checkpoints.checksum(tree)
  differ = _unlike_process_0(checksum)
  logging.info('%s checksum at step %d: %s', what, step, checksum)
  if differ:
    raise DistributedError(
        f"the {what} of processes {differ} differ from process 0's at step "
        f'{step}; no checkpoint was written at that step'
    )
