"""A user's error on a command line: one line on stderr, not a traceback.

``run(main, name)`` is ``absl.app.run`` for every command line of the
project (``rigl_jax.main``, ``rigl_jax.export``, ``scripts/*.py``). What
a user can act on prints as one line starting with ``name:`` and exits:

- 2: a bad or missing flag, a typo in a config key (``--config.sparsty``),
  a config file that cannot be loaded, an ``app.UsageError`` or an
  ``errors.FlagError``;
- 1: an ``errors.RunError`` (its class name, then its message) or an
  ``OSError`` (a missing file, a directory that cannot be written);
- the error's own ``exit_code`` where it has one (a preempted run: 75).

Anything else is a bug and keeps its traceback. ``scripts/run_progress.py``
and ``scripts/cifar10_archive.py`` import nothing of the project (they run
before it is installed, or where JAX is slow to start) and print the same
way by themselves, as do the shell scripts.
"""

from collections.abc import Callable, Iterator
import contextlib
import functools
import re
import sys
from typing import Any, NoReturn

from absl import app
from absl import flags
from absl import logging

from rigl_jax import errors

# Where ml_collections defines config file flags, once something imported it.
_CONFIG_FLAGS_MODULE = 'ml_collections.config_flags.config_flags'
# Exit status of a bad flag, argument or config file.
FLAG_EXIT_CODE = 2
# Exit status of any other error a user can act on.
ERROR_EXIT_CODE = 1


def fail(name: str, message: str, exit_code: int) -> NoReturn:
  """Prints ``name: message`` on one line of stderr and exits."""
  logging.flush()  # The line comes last, after the log.
  print(f'{name}: {" ".join(message.split())}', file=sys.stderr, flush=True)
  sys.exit(exit_code)


def one_line(error: BaseException) -> str:
  """The gist of a flag or config error: its last line if a traceback."""
  text = str(error).replace("\\'", "'").replace('\\n', '\n')
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  if 'Traceback (most recent call last)' in text:
    return re.sub(r'^[\w.]+(Error|Exception): ', '', lines[-1])
  text = ' '.join(lines).strip()
  # ml_collections' KeyError: 'sparsty' Did you mean "sparsity" instead...
  typo = re.search(r'([\w.]+)\'*\s*Did you mean ("[^"]*")', text)
  if typo:
    return f'unknown config key {typo[1]} (did you mean {typo[2]}?)'
  if 'Did you mean' in text:
    return 'unknown config key ' + text.strip('\'"').replace("''", "'")
  return text


def _config_flags() -> list[Any]:
  """The parsed flags of ml_collections config files (none if not used)."""
  module = sys.modules.get(_CONFIG_FLAGS_MODULE)
  if module is None:
    return []
  return [
      flags.FLAGS[key]
      for key in flags.FLAGS
      if module.is_config_flag(flags.FLAGS[key])
      and flags.FLAGS[key].value is not None
  ]


def flags_parser(name: str) -> Callable[[list[str]], list[str]]:
  """absl's flag parsing, with one line instead of a traceback on error.

  Config overrides are applied while parsing: a typo in a key or a bad
  ``:arg`` fail here; so does a config file that cannot be loaded (which
  ml_collections would only report at its first use).
  """

  def parse(argv: list[str]) -> list[str]:
    try:
      argv = flags.FLAGS(argv)
    except Exception as e:  # pylint: disable=broad-except
      cause = one_line(e.__cause__ or e)
      fail(name, f'bad flag or config: {cause}', FLAG_EXIT_CODE)
    for flag in _config_flags():
      try:
        flag.value.keys()  # A config file that failed to load raises.
      except OSError as e:
        last_line = str(e).strip().splitlines()[-1].strip()
        fail(name, f'bad config file: {last_line}', FLAG_EXIT_CODE)
    return argv

  return parse


def _short_run_hint(error: errors.RunError) -> str:
  """For a run shortened with --config.num_train_steps alone: the multiplier.

  A config's step anchors (T_end, pruning steps, learning-rate boundaries)
  are set for its own number of steps, and ``training_multiplier`` scales
  them all with it. Empty unless ``error`` is about num_train_steps and
  that flag asked for fewer steps than the config file has.
  """
  if not isinstance(error, errors.ConfigError):
    return ''
  if 'num_train_steps' not in str(error):
    return ''
  module = sys.modules.get(_CONFIG_FLAGS_MODULE)
  for flag in _config_flags():
    overrides = module.get_override_values(flag)
    if 'num_train_steps' in overrides:
      steps = overrides['num_train_steps']
      return _multiplier_hint(
          module.get_config_filename(flag),
          steps * overrides.get('training_multiplier', 1),
      )
  return ''


def _multiplier_hint(config_file: str, asked: float) -> str:
  """The multiplier that gives ``config_file`` about ``asked`` steps."""
  # pylint: disable=g-import-not-at-top
  from rigl_jax.sparse import schedules
  from rigl_jax.training import config as config_lib

  asked = round(asked)
  try:
    own_steps = config_lib.load(config_file).num_train_steps
  except errors.ConfigError:
    return ''
  if not 0 < asked < own_steps:
    return ''
  # The shortest multiplier that gives exactly the steps asked.
  for digits in range(2, 10):
    multiplier = float(f'{asked / own_steps:.{digits}g}')
    if schedules.scale_steps(own_steps, multiplier) == asked:
      break
  return (
      f'; for a run of {asked} steps, scale the whole schedule of '
      f'{config_file.partition(":")[0]} ({own_steps} steps) with '
      f'--config.training_multiplier={multiplier:g} instead of '
      '--config.num_train_steps'
  )


def error_line(error: BaseException) -> str:
  """``ClassName: message`` of a user's error, on one line."""
  hint = _short_run_hint(error) if isinstance(error, errors.RunError) else ''
  return f'{type(error).__name__}: {" ".join(str(error).split())}{hint}'


@contextlib.contextmanager
def one_line_errors(name: str) -> Iterator[None]:
  """Turns a user's error inside the block into one line and an exit."""
  try:
    yield
  except app.UsageError as e:
    fail(name, str(e), FLAG_EXIT_CODE)
  except errors.FlagError as e:
    fail(name, str(e), FLAG_EXIT_CODE)
  except (errors.RunError, OSError) as e:
    fail(name, error_line(e), getattr(e, 'exit_code', ERROR_EXIT_CODE))


def run(main: Callable[[list[str]], Any], name: str) -> None:
  """``app.run(main)``; a user's error prints as one line (see above)."""

  @functools.wraps(main)
  def reporting_main(argv: list[str]) -> Any:
    with one_line_errors(name):
      return main(argv)

  app.run(reporting_main, flags_parser=flags_parser(name))
