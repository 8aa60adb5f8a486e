r"""Prints the RigL paper's Table 2 for a config: FLOPs ratios per method.

One row per method, distribution and training multiplier ("RigL 5x (ERK)"),
and for each sparsity the training and test FLOPs relative to the dense model
(training: the dense model on the 1x schedule), plus the metric when
results.json files of finished runs are given:

  python scripts/flops_table.py --config=configs/mnist_lenet300.py
  python scripts/flops_table.py --config=configs/mnist_lenet300.py \
      --methods=rigl,set --sparsities=0.8,0.9 \
      --results=/tmp/runs/*/results.json

``--big_sparse=0.75:1.98`` adds the paper's Big-Sparse rows (RigL at width
1.98 at 75% sparsity, FLOPs against the width-1 dense model);
``--big_sparse_set=key=value`` sets other config values of those rows.
Config overrides (``--config.key=value``) apply to every cell. Runs match a
cell by their config's method, sparsity, distribution and training
multiplier (dense runs by method and multiplier); runs of one cell (e.g.
seeds) are averaged.
"""

import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from rigl_jax import errors
from rigl_jax import reports
from rigl_jax import sweeps
from rigl_jax.training import config as config_lib
from rigl_jax.sparse import methods

_CONFIG = config_flags.DEFINE_config_file(
    'config',
    None,
    'Experiment config file (configs/*.py[:args]).',
    lock_config=True,
)
_METHODS = flags.DEFINE_list(
    'methods', list(methods.METHODS), 'Methods (rows).'
)
_SPARSITIES = flags.DEFINE_list(
    'sparsities', ['0.75', '0.8', '0.9', '0.95'], 'Sparsities (column groups).'
)
_DISTRIBUTIONS = flags.DEFINE_list(
    'distributions', ['uniform', 'erk'], 'Sparsity distributions.'
)
_MULTIPLIERS = flags.DEFINE_list(
    'multipliers', ['1', '5'], 'Training multipliers.'
)
_RESULTS = flags.DEFINE_list(
    'results', [], 'results.json files (glob patterns) of finished runs.'
)
_BIG_SPARSE = flags.DEFINE_list(
    'big_sparse', [], 'sparsity:width pairs of Big-Sparse rows.'
)
_BIG_SPARSE_METHODS = flags.DEFINE_list(
    'big_sparse_methods', ['rigl'], 'Methods of the Big-Sparse rows.'
)
_BIG_SPARSE_SET = flags.DEFINE_multi_string(
    'big_sparse_set', [], 'key=value for the Big-Sparse rows only.'
)
_METRIC = flags.DEFINE_string(
    'metric', 'accuracy', "The key in results.json's 'eval' to report."
)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  results = reports.load_results(_RESULTS.value) if _RESULTS.value else []
  sparsities = [float(s) for s in _SPARSITIES.value]
  big_sparse = None
  if _BIG_SPARSE.value:
    widths = {}
    for pair in _BIG_SPARSE.value:
      sparsity, sep, width = pair.partition(':')
      if not sep:
        raise app.UsageError(f'--big_sparse: {pair!r} is not sparsity:width')
      widths[float(sparsity)] = float(width)
    big_sparse = reports.BigSparse(
        widths=widths,
        methods=tuple(_BIG_SPARSE_METHODS.value),
        overrides={
            key: config_lib.parse_value(value)
            for key, value in sweeps.parse_pairs(_BIG_SPARSE_SET.value).items()
        },
    )
  try:
    table = reports.flops_table(
        _CONFIG.value,
        _METHODS.value,
        sparsities,
        _DISTRIBUTIONS.value,
        [float(m) for m in _MULTIPLIERS.value],
        results,
        _METRIC.value,
        big_sparse,
    )
    reference = reports.dense_reference(_CONFIG.value)
  except errors.RunError as e:
    print(f'flops_table: {type(e).__name__}: {e}', file=sys.stderr)
    sys.exit(1)
  print(
      reports.markdown_table(
          table, _METRIC.value if results else None, sparsities
      )
  )
  print()
  print(reference)


if __name__ == '__main__':
  flags.mark_flags_as_required(['config'])
  app.run(main)
