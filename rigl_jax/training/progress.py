"""A progress line for long runs: step, percentage, steps/s and ETA."""

import datetime
import time
from typing import Optional

from absl import logging


class Progress:
  """Reports training progress at most every ``every_seconds``.

  The rate is measured over the steps since the previous report, from
  host clock times taken where the loop has synchronized with the device
  anyway (when it writes a summary).
  """

  def __init__(
      self, num_steps: int, start_step: int, every_seconds: float = 10.0
  ):
    self._num_steps = num_steps
    self._every_seconds = every_seconds
    self._last_step = start_step
    self._last_time = time.monotonic()

  def restart_clock(self) -> None:
    """Starts the rate's clock now (e.g. after compiling)."""
    self._last_time = time.monotonic()

  def update(self, step: int, force: bool = False) -> Optional[float]:
    """Logs a line and returns steps/s if it is time to report."""
    now = time.monotonic()
    elapsed = now - self._last_time
    if step <= self._last_step or (elapsed < self._every_seconds and not force):
      return None
    rate = (step - self._last_step) / elapsed
    eta = datetime.timedelta(seconds=round((self._num_steps - step) / rate))
    logging.info(
        'step %d/%d (%.1f%%), %.1f steps/s, ETA %s',
        step,
        self._num_steps,
        100 * step / self._num_steps,
        rate,
        eta,
    )
    self._last_step, self._last_time = step, now
    return rate
