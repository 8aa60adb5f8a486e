r"""Launches one experiment: a config file, a workdir, overrides.

  python -m rigl_jax.main --config=configs/mnist_lenet300.py \
      --workdir=/tmp/mnist --config.method=set --config.sparsity=0.95

Running the same command again resumes from the workdir's latest checkpoint,
or reports a finished run without running it again. SIGTERM or Ctrl-C saves
a checkpoint and stops (a second Ctrl-C aborts at once).

Exit codes: 0 done; 1 an error, printed as one line; 2 a bad flag or config
file; 75 preempted (a checkpoint holds the run: run the command again).

With --distributed, every process runs the same command (see
docs/multihost.md); a process whose peer dies exits 1 within seconds.
"""

import logging as pylogging
import os
import re
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from rigl_jax import errors
from rigl_jax.training import loop
from rigl_jax.training import processes
from rigl_jax.training import workdir as workdir_lib

_CONFIG = config_flags.DEFINE_config_file(
    'config',
    None,
    'Experiment config file (configs/*.py[:args]).',
    lock_config=True,
)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Directory for checkpoints, metrics and results.json.'
)
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed',
    False,
    'Call jax.distributed.initialize() first (multi-host TPU/GPU slices). '
    'On TPU, Slurm and Open MPI the cluster is detected; elsewhere give '
    'the three flags below on every host.',
)
_COORDINATOR_ADDRESS = flags.DEFINE_string(
    'coordinator_address', None, 'host:port of process 0, with --distributed.'
)
_NUM_PROCESSES = flags.DEFINE_integer(
    'num_processes', None, 'Number of processes, with --distributed.'
)
_PROCESS_ID = flags.DEFINE_integer(
    'process_id', None, "This process's index, with --distributed."
)
_DISTRIBUTED_TIMEOUT = flags.DEFINE_integer(
    'distributed_timeout',
    300,
    'With --distributed: seconds to wait for every process to join before '
    'giving up with one line.',
)
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    'allow_config_change',
    False,
    'Resume a run whose config differs in keys that change the result '
    '(each change is logged and listed in results.json).',
)
flags.mark_flags_as_required(['config', 'workdir'])


def _one_line(error: BaseException) -> str:
  """The gist of a flag or config error: its last line if a traceback."""
  text = str(error).replace("\\'", "'").replace('\\n', '\n')
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  if 'Traceback (most recent call last)' in text:
    return re.sub(r'^[\w.]+(Error|Exception): ', '', lines[-1])
  text = ' '.join(lines).strip()
  if 'Did you mean' in text:
    return 'unknown config key ' + text.strip('\'"').replace("''", "'")
  return text


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with one line instead of a traceback on error.

  Config overrides are applied while parsing: a typo in a key, a missing
  config file or a bad ``:arg`` fail here.
  """
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    cause = e.__cause__ or e
    print(
        f'rigl_jax: bad flag or config: {_one_line(cause)}',
        file=sys.stderr,
        flush=True,
    )
    sys.exit(2)


def _file_version(path: str) -> tuple[int, int] | None:
  """(inode, mtime) of ``path``: results.json is replaced when rewritten."""
  try:
    stat = os.stat(path)
  except OSError:
    return None
  return stat.st_ino, stat.st_mtime_ns


def _summary(results: dict, workdir: str, finished_before: bool) -> str:
  """The run's last line: where results.json is, and its headline numbers."""
  metrics = ', '.join(
      f'{key} {value:.4g}'
      for key, value in results['eval'].items()
      if isinstance(value, (int, float))
  )
  finished = (
      f'the run in {workdir} had already finished, not run again; '
      if finished_before
      else ''
  )
  return (
      f'rigl_jax: {finished}results in '
      f'{os.path.join(workdir, "results.json")}: '
      f'{metrics}; sparsity {results["sparsity"]["overall"]:.3f}; '
      f'{results["num_train_steps"]} steps'
  )


class _DropLibraryInfo(pylogging.Filter):
  """Drops INFO records of chatty libraries (orbax logs every file write)."""

  def filter(self, record: pylogging.LogRecord) -> bool:
    return record.levelno > pylogging.INFO or '/orbax/' not in record.pathname


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.get_absl_handler().addFilter(_DropLibraryInfo())
  if _DISTRIBUTED.value:
    try:
      processes.initialize(
          _COORDINATOR_ADDRESS.value,
          _NUM_PROCESSES.value,
          _PROCESS_ID.value,
          _DISTRIBUTED_TIMEOUT.value,
      )
    except errors.ConfigError as e:
      print(f'rigl_jax: bad flag: {e}', file=sys.stderr, flush=True)
      sys.exit(2)
  logging.info(
      'JAX process %d of %d, local devices: %s',
      jax.process_index(),
      jax.process_count(),
      jax.local_devices(),
  )
  try:
    config = _CONFIG.value
    config.keys()  # A config file that failed to load raises on first use.
  except OSError as e:  # The config file could not be loaded.
    last_line = str(e).strip().splitlines()[-1].strip()
    print(f'rigl_jax: bad config file: {last_line}', file=sys.stderr)
    sys.exit(2)
  workdir = _WORKDIR.value
  try:
    workdir = workdir_lib.resolve(workdir)
    processes.check_same_command(
        {
            'config': config.to_dict(),
            'workdir': workdir,
            'num_processes': _NUM_PROCESSES.value,
            'allow_config_change': _ALLOW_CONFIG_CHANGE.value,
        }
    )
    written_before = _file_version(os.path.join(workdir, 'results.json'))
    results = loop.train_and_evaluate(
        config, workdir, _ALLOW_CONFIG_CHANGE.value
    )
  except jax.errors.JaxRuntimeError as e:
    if jax.process_count() == 1:
      raise
    # A collective failed: a peer is gone, and JAX's own shutdown would
    # wait for it.
    processes.exit_now(processes.peer_lost(e, workdir))
  except errors.RunError as e:
    logging.flush()
    # One readable line, last on stderr.
    message = ' '.join(str(e).split())
    print(
        f'rigl_jax: {type(e).__name__}: {message}', file=sys.stderr, flush=True
    )
    sys.exit(getattr(e, 'exit_code', 1))
  logging.flush()
  finished_before = written_before is not None and written_before == (
      _file_version(os.path.join(workdir, 'results.json'))
  )
  print(_summary(results, workdir, finished_before), flush=True)


if __name__ == '__main__':
  app.run(main, flags_parser=_parse_flags)
