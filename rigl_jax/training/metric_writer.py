"""Scalars to TensorBoard event files and to the log, without TensorFlow.

Event files are written by tensorboardX in a background thread; only
process 0 writes them, every process logs.
"""

from collections.abc import Mapping
from typing import Any

from absl import logging
import tensorboardX
from tensorboardX import summary as summary_lib


class MetricWriter:
  """Writes scalars and hyper-parameters of a run."""

  def __init__(self, logdir: str, *, write_events: bool = True):
    """Creates the writer.

    Args:
      logdir: where the event file goes.
      write_events: False writes no event file (processes other than 0).
    """
    self._events = (
        tensorboardX.SummaryWriter(logdir, flush_secs=30)
        if write_events
        else None
    )

  def write_scalars(
      self, step: int, scalars: Mapping[str, float], *, log: bool = True
  ) -> None:
    """Writes ``scalars`` at ``step``; ``log=False`` skips the log line."""
    if self._events is not None:
      for key, value in scalars.items():
        self._events.add_scalar(key, value, step)
    if log and scalars:
      logging.info(
          '[%d] %s', step, ', '.join(f'{k}={v:.6g}' for k, v in scalars.items())
      )

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    """Hyper-parameters for TensorBoard's HParams dashboard."""
    if self._events is None:
      return
    experiment, session_start, session_end = summary_lib.hparams(
        dict(hparams), {}
    )
    for summary in (experiment, session_start, session_end):
      self._events.file_writer.add_summary(summary)

  def flush(self) -> None:
    if self._events is not None:
      self._events.flush()

  def close(self) -> None:
    if self._events is not None:
      self._events.close()
