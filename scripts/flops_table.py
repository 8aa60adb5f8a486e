r"""Prints the RigL paper's Table 2 for a config: FLOPs ratios per method.

One row per method, distribution and training multiplier ("RigL 5x (ERK)"),
and for each sparsity the training and test FLOPs relative to the dense model
(training: the dense model on the 1x schedule), plus the accuracy when
results.json files of finished runs are given:

  python scripts/flops_table.py --config=configs/mnist_lenet300.py
  python scripts/flops_table.py --config=configs/mnist_lenet300.py \
      --methods=rigl,set --sparsities=0.8,0.9 \
      --results=/tmp/runs/*/results.json

Config overrides (``--config.key=value``) apply to every cell. Runs match a
cell by their config's method, sparsity, distribution and training
multiplier (dense runs by method and multiplier); runs of one cell (e.g.
seeds) are averaged.
"""

import collections
import copy
import dataclasses
import glob
import json
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional

from absl import app
from absl import flags
import ml_collections
from ml_collections import config_flags

from rigl_jax import errors
from rigl_jax.training import costs as flops
from rigl_jax.sparse import methods as methods_lib

DISTRIBUTION_SUFFIXES = {'uniform': '', 'erk': ' (ERK)', 'erdos_renyi': ' (ER)'}

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file (configs/*.py[:args]).',
    lock_config=True)
_METHODS = flags.DEFINE_list('methods', list(methods_lib.DISPLAY_NAMES),
                             'Methods (rows).')
_SPARSITIES = flags.DEFINE_list('sparsities', ['0.75', '0.8', '0.9', '0.95'],
                                'Sparsities (column groups).')
_DISTRIBUTIONS = flags.DEFINE_list('distributions', ['uniform', 'erk'],
                                   'Sparsity distributions.')
_MULTIPLIERS = flags.DEFINE_list('multipliers', ['1', '5'],
                                 'Training multipliers.')
_RESULTS = flags.DEFINE_list(
    'results', [], 'results.json files (glob patterns) of finished runs.')
_METRIC = flags.DEFINE_string('metric', 'accuracy',
                              "The key in results.json's 'eval' to report.")

# Identifies a table cell: (method, sparsity, distribution, multiplier);
# sparsity and distribution are None for dense.
CellKey = tuple[str, Optional[float], Optional[str], float]


@dataclasses.dataclass(frozen=True)
class Cell:
  """One method variant at one sparsity."""
  train_flops_ratio: float
  test_flops_ratio: float
  metric: Optional[list[float]] = None  # One value per matching run.


@dataclasses.dataclass(frozen=True)
class Row:
  """A method variant, e.g. 'RigL 5x (ERK)', with a cell per sparsity."""
  label: str
  cells: Mapping[float, Cell]


def cell_key(method: str, sparsity: float, distribution: str,
             multiplier: float) -> CellKey:
  """The key of a cell; dense methods ignore sparsity and distribution."""
  if method == 'dense':
    return (method, None, None, float(multiplier))
  return (method, round(float(sparsity), 6), distribution, float(multiplier))


def row_label(method: str, distribution: str, multiplier: float) -> str:
  """'RigL', 'RigL 5x', 'RigL (ERK)', 'RigL 5x (ERK)' (as in the paper)."""
  label = methods_lib.DISPLAY_NAMES.get(method, method)
  if multiplier != 1:
    label += f' {multiplier:g}x'
  if method != 'dense':
    label += DISTRIBUTION_SUFFIXES.get(distribution, f' ({distribution})')
  return label


def load_results(paths: Iterable[str],
                 metric: str) -> dict[CellKey, list[float]]:
  """``metric`` of each results.json file, grouped by cell."""
  grouped = collections.defaultdict(list)
  for path in paths:
    with open(path, encoding='utf-8') as f:
      results = json.load(f)
    config = results['config']
    if metric not in results['eval']:
      raise ValueError(f'{path}: eval has no {metric!r}; it has '
                       f'{sorted(results["eval"])}')
    key = cell_key(config['method'], config['sparsity'],
                   config['distribution'], config['training_multiplier'])
    grouped[key].append(float(results['eval'][metric]))
  return dict(grouped)


def _with(config: ml_collections.ConfigDict,
          **values: Any) -> ml_collections.ConfigDict:
  config = copy.deepcopy(config)
  for key, value in values.items():
    config[key] = value
  return config


def table_rows(config: ml_collections.ConfigDict, methods: Sequence[str],
               sparsities: Sequence[float], distributions: Sequence[str],
               multipliers: Sequence[float],
               results: Optional[Mapping[CellKey, list[float]]] = None
               ) -> list[Row]:
  """The rows of the table: FLOPs from ``flops_report``, metrics from runs."""
  for method in methods:
    methods_lib.get_method_class(method)  # A clear error for a typo.
  rows = []
  for method in methods:
    for distribution in (distributions[:1] if method == 'dense' else
                         distributions):
      for multiplier in multipliers:
        cells = {}
        for sparsity in sparsities:
          report = flops.flops_report(
              _with(config, method=method, sparsity=sparsity,
                    distribution=distribution,
                    training_multiplier=multiplier))
          key = cell_key(method, sparsity, distribution, multiplier)
          cells[sparsity] = Cell(report['train_flops_ratio'],
                                 report['inference_flops_ratio'],
                                 (results or {}).get(key))
        rows.append(Row(row_label(method, distribution, multiplier), cells))
  return rows


def _format_metric(values: Optional[list[float]], metric: str) -> str:
  if not values:
    return '-'
  scale = 100.0 if metric == 'accuracy' else 1.0
  mean = statistics.mean(values) * scale
  if len(values) == 1:
    return f'{mean:.2f}'
  return f'{mean:.2f} ± {statistics.stdev(values) * scale:.2f}'


def format_table(rows: Sequence[Row], sparsities: Sequence[float],
                 metric: Optional[str] = None) -> str:
  """Markdown: a column group per sparsity (metric, train and test FLOPs)."""
  header = ['Method']
  for sparsity in sparsities:
    group = f'S={sparsity:g}'
    if metric:
      header.append(f'{group} {metric.replace("_", " ").capitalize()}')
    header += [f'{group} FLOPs (Train)', f'{group} FLOPs (Test)']
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '|'.join([':---'] + ['---:'] * (len(header) - 1)) + '|']
  for row in rows:
    fields = [row.label]
    for sparsity in sparsities:
      cell = row.cells[sparsity]
      if metric:
        fields.append(_format_metric(cell.metric, metric))
      fields += [f'{cell.train_flops_ratio:.2f}x',
                 f'{cell.test_flops_ratio:.2f}x']
    lines.append('| ' + ' | '.join(fields) + ' |')
  return '\n'.join(lines)


def dense_reference(config: ml_collections.ConfigDict) -> str:
  """The absolute FLOPs that the ratios divide by, as one line."""
  report = flops.flops_report(_with(config, method='dense',
                                    training_multiplier=1.0))
  return (f'Dense (1x): {report["dense_train_flops"]:.3g} training FLOPs, '
          f'{report["dense_inference_flops"]:.3g} FLOPs per test example.')


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config = _CONFIG.value
  paths = sorted(p for pattern in _RESULTS.value
                 for p in (glob.glob(pattern) or [pattern]))
  results = load_results(paths, _METRIC.value) if paths else None
  sparsities = [float(s) for s in _SPARSITIES.value]
  try:
    rows = table_rows(config, _METHODS.value, sparsities, _DISTRIBUTIONS.value,
                      [float(m) for m in _MULTIPLIERS.value], results)
    reference = dense_reference(config)
  except errors.RunError as e:
    print(f'flops_table: {type(e).__name__}: {e}', file=sys.stderr)
    sys.exit(1)
  print(format_table(rows, sparsities, _METRIC.value if results else None))
  print()
  print(reference)


if __name__ == '__main__':
  flags.mark_flags_as_required(['config'])
  app.run(main)
