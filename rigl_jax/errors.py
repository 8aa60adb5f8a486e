"""Errors a user can act on; command lines print them as one line and exit 1.

``rigl_jax.command_line`` prints them (an ``exit_code`` overrides the 1).

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


class ResultsFileError(RunError, ValueError):
  """A results.json cannot be read: cut short, not JSON, or lacking keys."""


class FlagError(RunError, ValueError):
  """A command-line flag or argument is invalid; the message names it."""

  # As absl's flag errors and a bad config file: a usage error.
  exit_code = 2


class DivergenceError(RunError):
  """The loss or the gradients became non-finite."""


class Preempted(RunError):
  """SIGTERM or Ctrl-C arrived; a checkpoint was written before stopping."""

  # The exit code of a preempted run (EX_TEMPFAIL): run the command again.
  exit_code = 75
