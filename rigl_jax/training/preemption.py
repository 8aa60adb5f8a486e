"""Noticing preemption: a signal on one host, a sync point on many.

A preempted run saves a checkpoint at the step it reached and stops; the
same command resumes it. On several hosts every process must stop at the
same step, so there JAX's preemption sync point (through orbax) decides.
"""

import os
import signal
import sys
import threading
from typing import Callable, Optional

# The exit status of a run aborted by a second signal (128 + SIGINT, as a
# shell reports Ctrl-C): no checkpoint was written at the step it reached.
ABORTED_EXIT_CODE = 130

# Signals that mean "checkpoint and stop": a scheduler's SIGTERM, Ctrl-C,
# and SIGHUP when the terminal of the run closes.
STOP_SIGNALS = tuple(
    getattr(signal, name)
    for name in ('SIGTERM', 'SIGINT', 'SIGHUP')
    if hasattr(signal, name)
)


def detach_from_terminal() -> None:
  """Sends what the run prints to a closed terminal to /dev/null instead.

  Writing to a terminal that hung up fails, and the failure would replace
  the run's checkpoint-and-exit-75 with a traceback.
  """
  devnull = os.open(os.devnull, os.O_WRONLY)
  for fd in (1, 2):
    if os.isatty(fd):
      os.dup2(devnull, fd)
  os.close(devnull)


class PreemptionWatch:
  """Context manager that records SIGTERM, Ctrl-C and SIGHUP instead of dying.

  The first of these signals asks for a checkpoint after the current step.
  A second one aborts at once, without a checkpoint: ``on_abort`` runs (it
  releases the workdir), one line is printed and the process exits with
  ``ABORTED_EXIT_CODE``; the checkpoints written before stay intact.
  """

  def __init__(
      self,
      process_count: int,
      reached_sync_point: Callable[[int], bool],
      on_abort: Optional[Callable[[], None]] = None,
      checkpoint_dir: Optional[str] = None,
  ):
    """Creates the watch.

    Args:
      process_count: the number of JAX processes.
      reached_sync_point: step -> whether all hosts agreed to stop there.
      on_abort: run before the process exits on a second signal.
      checkpoint_dir: named by the line printed on a second signal.
    """
    self._multi_host = process_count > 1
    self._reached_sync_point = reached_sync_point
    self._on_abort = on_abort
    self._checkpoint_dir = checkpoint_dir
    self._sigterm = threading.Event()
    self._handled = 0  # Signals whose Python handler ran.
    self._aborting = threading.Lock()
    self._previous_handlers = {}
    self._previous_wakeup_fd = None
    self._wakeup_write_fd = None

  def __enter__(self) -> 'PreemptionWatch':
    # Signal handlers can only be installed from the main thread; elsewhere
    # (e.g. a notebook worker) the signals keep their default behaviour.
    if not self._multi_host and (
        threading.current_thread() is threading.main_thread()
    ):
      for signum in STOP_SIGNALS:
        self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
      self._count_arrivals()
    return self

  def _count_arrivals(self) -> None:
    """Counts the signals as they arrive, in a thread of their own.

    Python runs a handler in the main thread between bytecodes: two signals
    that arrive while it waits in a C call (a device step, a save) run the
    handler once, and a main thread that waits for minutes runs it late.
    Python's C-level handler writes each signal's number to the wakeup fd
    as it arrives.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    self._previous_wakeup_fd = signal.set_wakeup_fd(
        write_fd, warn_on_full_buffer=False
    )
    self._wakeup_write_fd = write_fd
    threading.Thread(
        target=self._read_arrivals,
        args=(read_fd,),
        name='stop_signals',
        daemon=True,
    ).start()

  def _read_arrivals(self, read_fd: int) -> None:
    arrived = 0
    with os.fdopen(read_fd, 'rb', buffering=0) as arrivals:
      while numbers := arrivals.read(64):  # Empty once the watch ends.
        for signum in numbers:
          if signum in STOP_SIGNALS:
            arrived += 1
            self._sigterm.set()
            if arrived > 1:
              self._abort(signum)

  def _on_signal(self, signum, frame) -> None:
    del frame
    if signum == getattr(signal, 'SIGHUP', None):
      detach_from_terminal()
    self._handled += 1
    if self._handled > 1:
      self._abort(signum)
    self._sigterm.set()
    if signum == signal.SIGINT:
      _write_line(
          'Ctrl-C: saving a checkpoint after this step (again to abort)'
      )

  def _abort(self, signum: int) -> None:
    """Exits now: the main thread may be anywhere, even inside a save.

    A KeyboardInterrupt there would leave orbax's threads waiting, and
    Python's shutdown with them.
    """
    if not self._aborting.acquire(blocking=False):
      return  # The other thread that counts is exiting.
    if self._on_abort is not None:
      try:
        self._on_abort()
      except Exception:  # pylint: disable=broad-except
        pass  # Exiting matters more than tidying.
    kept = (
        f'; the checkpoints in {self._checkpoint_dir} are intact'
        if self._checkpoint_dir
        else ''
    )
    _write_line(
        f'rigl_jax: aborted without a checkpoint (a second '
        f'{signal.Signals(signum).name}){kept}',
        fd=2,
    )
    os._exit(ABORTED_EXIT_CODE)  # pylint: disable=protected-access

  def __exit__(self, *exc_info) -> None:
    for signum, handler in self._previous_handlers.items():
      signal.signal(signum, handler)
    self._previous_handlers = {}
    if self._wakeup_write_fd is not None:
      signal.set_wakeup_fd(self._previous_wakeup_fd)
      os.close(self._wakeup_write_fd)  # The counting thread ends.
      self._wakeup_write_fd = None

  def should_stop(self, step: int) -> bool:
    """Whether to checkpoint and stop after ``step`` steps."""
    if self._multi_host:
      return self._reached_sync_point(step)
    return self._sigterm.is_set()


def _write_line(text: str, fd: int = 1) -> None:
  """Writes a line past Python's buffers (a handler may interrupt them)."""
  stream = sys.stdout if fd == 1 else sys.stderr
  try:
    stream.flush()
  except (OSError, RuntimeError, ValueError):
    pass  # A closed stream, or a write this handler interrupted.
  try:
    os.write(fd, (text + '\n').encode())
  except OSError:
    pass
