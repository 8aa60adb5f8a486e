"""A progress line for long runs: step, percentage, steps/s and ETA."""

import datetime
import time
from typing import Optional

from absl import logging

# Seconds between progress lines, whatever the log interval.
REPORT_EVERY_SECONDS = 10.0


class Progress:
  """Reports training progress every ``every_seconds`` or so.

  The loop calls ``update`` after every step it dispatches; that reads the
  host clock and nothing from the devices. The loop dispatches at most a
  few steps ahead of the devices (``loop.MAX_STEPS_IN_FLIGHT``), so the
  rate over the steps since the previous report is the devices' rate.
  """

  def __init__(
      self,
      num_steps: int,
      start_step: int,
      every_seconds: Optional[float] = None,
  ):
    self._num_steps = num_steps
    self._every_seconds = (
        REPORT_EVERY_SECONDS if every_seconds is None else every_seconds
    )
    self._last_step = start_step
    self._last_time = time.monotonic()
    self._unread_rate = None

  def restart_clock(self) -> None:
    """Starts the rate's clock now (e.g. after compiling)."""
    self._last_time = time.monotonic()

  def update(self, step: int, force: bool = False) -> Optional[float]:
    """Logs a line and returns steps/s if it is time to report."""
    now = time.monotonic()
    elapsed = now - self._last_time
    if step <= self._last_step or (elapsed < self._every_seconds and not force):
      return None
    rate = (step - self._last_step) / max(elapsed, 1e-9)
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
    self._unread_rate = rate
    return rate

  def take_rate(self) -> Optional[float]:
    """steps/s of the latest report if not taken yet (for a summary)."""
    rate, self._unread_rate = self._unread_rate, None
    return rate
