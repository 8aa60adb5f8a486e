r"""Prints the parameter and FLOPs counts of a config as JSON.

The report of ``rigl_jax.training.build.flops_report``: parameters, nonzero
parameters, size in bits, inference and training FLOPs and their ratios to
the dense model, and per-layer FLOPs. No data set is needed (the model is
traced on shapes only):

  python scripts/costs.py --config=configs/mnist_lenet300.py \
      --config.method=set --config.sparsity=0.95
"""

import json

from absl import app
from absl import flags
from ml_collections import config_flags

from rigl_jax import command_line
from rigl_jax.training import build

_CONFIG = config_flags.DEFINE_config_file(
    'config',
    None,
    'Experiment config file (configs/*.py[:args]).',
    lock_config=True,
)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  print(json.dumps(build.flops_report(_CONFIG.value), indent=2))


if __name__ == '__main__':
  flags.mark_flags_as_required(['config'])
  # As rigl_jax.main: a bad flag or config is one line.
  command_line.run(main, 'costs')
