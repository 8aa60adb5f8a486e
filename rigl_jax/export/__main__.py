r"""Writes a run's masks and masked params for other tools.

  python -m rigl_jax.export --workdir=/tmp/mnist --out=/tmp/mnist_export \
      [--step=N]

See ``rigl_jax.export`` for the files. Exit codes: 0 done; 1 an error,
printed as one line naming the path (no workdir, no checkpoint, no
checkpoint at --step, --out not writable); 2 a missing or bad flag, also
one line.
"""

import logging as pylogging

from absl import app
from absl import flags
from absl import logging

from rigl_jax import command_line
from rigl_jax import export

_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'The workdir of the run whose masks are exported.'
)
_OUT = flags.DEFINE_string(
    'out',
    None,
    'Directory for masks.npz, params.npz and meta.json (created if missing).',
)
_STEP = flags.DEFINE_integer(
    'step',
    None,
    'The checkpoint step to export; default: the newest readable one.',
)
flags.mark_flags_as_required(['workdir', 'out'])


class _DropLibraryInfo(pylogging.Filter):
  """Drops INFO records of chatty libraries (orbax logs every file read)."""

  def filter(self, record: pylogging.LogRecord) -> bool:
    return record.levelno > pylogging.INFO or '/orbax/' not in record.pathname


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.get_absl_handler().addFilter(_DropLibraryInfo())
  meta = export.export_masks(_WORKDIR.value, _OUT.value, _STEP.value)
  logging.flush()
  sparsity = meta['sparsity']
  print(
      f"rigl_jax.export: step {meta['step']} of {meta['workdir']} in "
      f'{export.resolved_out(_OUT.value)}: {export.MASKS_FILE} '
      f"({len(sparsity['layers'])} masked layers, sparsity "
      f"{sparsity['overall']:.3f}), {export.PARAMS_FILE}, {export.META_FILE}",
      flush=True,
  )


if __name__ == '__main__':
  # As rigl_jax.main: a RunError is one readable line, last on stderr.
  command_line.run(main, 'rigl_jax.export')
