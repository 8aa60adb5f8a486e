r"""Launches one experiment: a config file, a workdir, overrides.

  python -m rigl_jax.main --config=configs/mnist_lenet300.py \
      --workdir=/tmp/mnist --config.method=set --config.sparsity=0.95

Running the same command again resumes from the workdir's latest checkpoint.
"""

import logging as pylogging
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from rigl_jax import errors
from rigl_jax.training import loop as train

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
flags.mark_flags_as_required(['config', 'workdir'])


class _DropLibraryInfo(pylogging.Filter):
  """Drops INFO records of chatty libraries (orbax logs every file write)."""

  def filter(self, record: pylogging.LogRecord) -> bool:
    return record.levelno > pylogging.INFO or '/orbax/' not in record.pathname


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.get_absl_handler().addFilter(_DropLibraryInfo())
  if _DISTRIBUTED.value:
    jax.distributed.initialize(
        coordinator_address=_COORDINATOR_ADDRESS.value,
        num_processes=_NUM_PROCESSES.value,
        process_id=_PROCESS_ID.value,
    )
  logging.info(
      'JAX process %d of %d, local devices: %s',
      jax.process_index(),
      jax.process_count(),
      jax.local_devices(),
  )
  try:
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except errors.RunError as e:
    logging.flush()
    # One readable line, last on stderr.
    message = ' '.join(str(e).split())
    print(
        f'rigl_jax: {type(e).__name__}: {message}', file=sys.stderr, flush=True
    )
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)
