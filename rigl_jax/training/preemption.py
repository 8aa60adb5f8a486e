"""Noticing preemption: SIGTERM on one host, a sync point on many.

A preempted run saves a checkpoint at the step it reached and stops; the
same command resumes it. On several hosts every process must stop at the
same step, so there JAX's preemption sync point (through orbax) decides.
"""

import signal
import threading
from typing import Callable


class PreemptionWatch:
  """Context manager that records SIGTERM and Ctrl-C instead of dying.

  A second Ctrl-C aborts at once (KeyboardInterrupt), without a checkpoint.
  """

  def __init__(
      self, process_count: int, reached_sync_point: Callable[[int], bool]
  ):
    """Creates the watch.

    Args:
      process_count: the number of JAX processes.
      reached_sync_point: step -> whether all hosts agreed to stop there.
    """
    self._multi_host = process_count > 1
    self._reached_sync_point = reached_sync_point
    self._sigterm = threading.Event()
    self._previous_handlers = {}

  def __enter__(self) -> 'PreemptionWatch':
    # Signal handlers can only be installed from the main thread; elsewhere
    # (e.g. a notebook worker) SIGTERM keeps its default behaviour.
    if not self._multi_host and (
        threading.current_thread() is threading.main_thread()
    ):
      for signum in (signal.SIGTERM, signal.SIGINT):
        self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
    return self

  def _on_signal(self, signum, frame) -> None:
    del frame
    if signum == signal.SIGINT and self._sigterm.is_set():
      raise KeyboardInterrupt  # A second Ctrl-C: stop now.
    if signum == signal.SIGINT:
      print(
          'Ctrl-C: saving a checkpoint after this step (again to abort)',
          flush=True,
      )
    self._sigterm.set()

  def __exit__(self, *exc_info) -> None:
    for signum, handler in self._previous_handlers.items():
      signal.signal(signum, handler)
    self._previous_handlers = {}

  def should_stop(self, step: int) -> bool:
    """Whether to checkpoint and stop after ``step`` steps."""
    if self._multi_host:
      return self._reached_sync_point(step)
    return self._sigterm.is_set()
