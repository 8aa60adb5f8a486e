r"""Launches one experiment: a config file, a workdir, overrides.

  python -m rigl_jax.main --config=configs/mnist_lenet300.py \
      --workdir=/tmp/mnist --config.method=set --config.sparsity=0.95

Running the same command again resumes from the workdir's latest checkpoint,
or reports a finished run without running it again. SIGTERM, Ctrl-C or
SIGHUP (the terminal closed) saves a checkpoint and stops; a second one
aborts at once, without a checkpoint.

Exit codes: 0 done; 1 an error, printed as one line; 2 a bad flag or config
file; 75 preempted (a checkpoint holds the run: run the command again); 130
aborted by a second signal (the earlier checkpoints hold the run).

With --distributed, every process runs the same command (see
docs/multihost.md); a process whose peer dies exits 1 within seconds.
"""

import json
import logging as pylogging
import os
import threading

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from rigl_jax import command_line
from rigl_jax import errors
from rigl_jax.training import loop
from rigl_jax.training import processes
from rigl_jax.training import provenance
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


class _QuietLibraries(pylogging.Filter):
  """Keeps orbax's chatter off the terminal unless --verbosity=1 (debug).

  orbax logs every file write (INFO) and, when a save fails, a traceback
  from each of its background threads (ERROR): the run reports that
  failure as one line naming the step and the cause. Its warnings pass.
  """

  def filter(self, record: pylogging.LogRecord) -> bool:
    if '/orbax/' not in record.pathname or logging.level_debug():
      return True
    return record.levelno == pylogging.WARNING and not record.exc_info


def _threads_left_behind() -> bool:
  """Whether threads that Python's shutdown would wait for still run.

  A failed checkpoint save leaves orbax's threads waiting (minutes) for
  files that will never be written.
  """
  return any(
      thread.is_alive() and not thread.daemon
      for thread in threading.enumerate()
      if thread is not threading.current_thread()
  )


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if _DISTRIBUTED.value:
    try:
      processes.initialize(
          _COORDINATOR_ADDRESS.value,
          _NUM_PROCESSES.value,
          _PROCESS_ID.value,
          _DISTRIBUTED_TIMEOUT.value,
      )
    except errors.ConfigError as e:
      command_line.fail(
          'rigl_jax', f'bad flag: {e}', command_line.FLAG_EXIT_CODE
      )
  logging.info(
      'JAX process %d of %d, local devices: %s',
      jax.process_index(),
      jax.process_count(),
      jax.local_devices(),
  )
  # One line a run still training can be traced by (scripts/run_progress.py
  # reads it); a finished run also keeps it in results.json.
  logging.info(
      'Provenance: %s', json.dumps(provenance.describe(), sort_keys=True)
  )
  config = _CONFIG.value  # Loaded, or refused while parsing the flags.
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
    if _threads_left_behind():
      # The line command_line.run would print, without Python's shutdown
      # waiting for those threads.
      processes.exit_now(e)
    raise
  # A RunError goes on to command_line.run: one readable line, last on stderr.
  logging.flush()
  finished_before = written_before is not None and written_before == (
      _file_version(os.path.join(workdir, 'results.json'))
  )
  print(_summary(results, workdir, finished_before), flush=True)


if __name__ == '__main__':
  command_line.run(main, 'rigl_jax')
