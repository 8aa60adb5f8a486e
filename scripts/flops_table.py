r"""Prints the RigL paper's Table 2 for a config: FLOPs ratios per method.

One row per method, distribution and training multiplier ("RigL 5x (ERK)"),
and for each sparsity the training and test FLOPs relative to the dense model
(training: the dense model on the 1x schedule), plus the metric when
results.json files of finished runs are given:

  python scripts/flops_table.py --config=configs/mnist_lenet300.py
  python scripts/flops_table.py --config=configs/mnist_lenet300.py \
      --methods=rigl,set --sparsities=0.8,0.9 \
      --results=/tmp/runs/*/results.json

Flags (lists are comma-separated):

- ``--config`` (required): the config file (``configs/*.py[:args]``) whose
  model, data set and schedules every cell uses; ``--config.key=value``
  overrides apply to every cell;
- ``--methods``: the rows' methods (default: all of them);
- ``--sparsities``: the column groups (default 0.75,0.8,0.9,0.95);
- ``--distributions``: uniform, erdos_renyi, erk (default uniform,erk);
- ``--multipliers``: training multipliers (default 1,5);
- ``--results``: results.json files (glob patterns) of finished runs, and
  ``--metric`` (default accuracy), the key of their 'eval' to report. Runs
  match a cell by their config's method, sparsity, distribution and
  training multiplier (dense runs by method and multiplier); runs of one
  cell (e.g. seeds) are averaged;
- ``--big_sparse=0.75:1.98`` adds the paper's Big-Sparse rows (RigL at
  width 1.98 at 75% sparsity, FLOPs against the width-1 dense model), of
  the methods in ``--big_sparse_methods`` (default rigl);
  ``--big_sparse_set=key=value`` sets other config values of those rows.

Nothing is compiled or computed on arrays: each model is traced on shapes
once per width, so a table takes seconds (ResNet-50 with every method
about 75 s of CPU time on a 2-core CPU, most of it Small-Dense's width
search). A bad flag, config key or results file stops it with one line
before any tracing.
"""

from collections.abc import Callable, Sequence
import copy

from absl import app
from absl import flags
from ml_collections import config_flags

from rigl_jax import command_line
from rigl_jax import reports
from rigl_jax import sweeps
from rigl_jax.sparse import DISTRIBUTIONS
from rigl_jax.sparse import methods
from rigl_jax.training import config as config_lib

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


def _validator(name: str, check: Callable[[str], str]) -> None:
  """Validates list flag ``name``: ``check`` says what is wrong with an item."""

  def validate(values: Sequence[str]) -> bool:
    for value in values:
      problem = check(value)
      if problem:
        raise flags.ValidationError(f'{value!r} {problem}')
    return True

  flags.register_validator(name, validate)


def _number_problem(
    value: str, valid: Callable[[float], bool], what: str
) -> str:
  """What is wrong with ``value`` as a number that is ``what``, or ''."""
  try:
    number = float(value)
  except ValueError:
    return 'is not a number'
  return '' if valid(number) else f'is not {what}'


def _sparsity_problem(value: str) -> str:
  return _number_problem(value, lambda s: 0.0 <= s < 1.0, 'in [0, 1)')


def _positive_problem(value: str) -> str:
  return _number_problem(value, lambda x: x > 0.0, 'positive')


def _pair_problem(value: str) -> str:
  sparsity, sep, width = value.partition(':')
  if not sep:
    return 'is not sparsity:width'
  problem = _sparsity_problem(sparsity)
  if problem:
    return f'has a sparsity that {problem}'
  problem = _positive_problem(width)
  return problem and f'has a width that {problem}'


def _one_of(names: Sequence[str]) -> Callable[[str], str]:
  return lambda name: '' if name in names else f'is not one of {list(names)}'


# Flag values are checked while parsing, before any tracing.
_validator('methods', _one_of(list(methods.METHODS)))
_validator('big_sparse_methods', _one_of(list(methods.METHODS)))
_validator('sparsities', _sparsity_problem)
_validator('multipliers', _positive_problem)
_validator('distributions', _one_of(DISTRIBUTIONS))
_validator('big_sparse', _pair_problem)


def _big_sparse() -> reports.BigSparse | None:
  if not _BIG_SPARSE.value:
    return None
  widths = {}
  for pair in _BIG_SPARSE.value:
    sparsity, _, width = pair.partition(':')
    widths[float(sparsity)] = float(width)
  pairs = sweeps.parse_pairs(_BIG_SPARSE_SET.value, '--big_sparse_set')
  overrides = {
      key: config_lib.parse_value(value) for key, value in pairs.items()
  }
  # An unknown key fails now, not after the rest of the table.
  config_lib.set_values(copy.deepcopy(_CONFIG.value), overrides)
  return reports.BigSparse(
      widths=widths,
      methods=tuple(_BIG_SPARSE_METHODS.value),
      overrides=overrides,
  )


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  results = reports.load_results(_RESULTS.value) if _RESULTS.value else []
  sparsities = [float(s) for s in _SPARSITIES.value]
  table = reports.flops_table(
      _CONFIG.value,
      _METHODS.value,
      sparsities,
      _DISTRIBUTIONS.value,
      [float(m) for m in _MULTIPLIERS.value],
      results,
      _METRIC.value,
      _big_sparse(),
  )
  reference = reports.dense_reference(_CONFIG.value)
  print(
      reports.markdown_table(
          table, _METRIC.value if results else None, sparsities
      )
  )
  print()
  print(reference)


if __name__ == '__main__':
  flags.mark_flags_as_required(['config'])
  # A bad flag, config or results file: one line, as rigl_jax.main.
  command_line.run(main, 'flops_table')
