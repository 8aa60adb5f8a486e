"""Errors a user can act on; ``main`` prints them as one line and exits 1.

Anything else is a bug and keeps its traceback.
"""


class RunError(Exception):
  """A run stopped for a reason outside the code: input, data, training."""


class ConfigError(RunError, ValueError):
  """A config value is invalid; the message names the key."""


class DataFileError(RunError, ValueError):
  """A data file is missing, truncated or not what was expected."""


class ResumeError(RunError):
  """The workdir holds a run that the current config cannot continue."""


class WorkdirError(RunError):
  """The workdir cannot be used: empty, not writable, or in use."""


class DivergenceError(RunError):
  """The loss or the gradients became non-finite."""


class Preempted(RunError):
  """SIGTERM or Ctrl-C arrived; a checkpoint was written before stopping."""

  # The exit code of a preempted run (EX_TEMPFAIL): run the command again.
  exit_code = 75
