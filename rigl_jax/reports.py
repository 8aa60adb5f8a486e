"""Tables and plots of runs in the RigL paper's layouts (Table 2, Figure 2).

A table maps a row label ('RigL 5x (ERK)') to a cell per sparsity; dense
rows sit at sparsity 0 and fill every sparsity group. A cell holds the
training and inference FLOPs relative to the dense model and the metric of
each run (seed) that belongs to it. ``scripts/report.py`` builds tables from
the results.json files of a sweep, ``scripts/flops_table.py`` from a
config's FLOPs reports (with metrics from finished runs, if given).
"""

import collections
import copy
import dataclasses
import glob
import json
import os
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from absl import logging
import ml_collections

from rigl_jax import errors
from rigl_jax import table_provenance
from rigl_jax.sparse import methods
from rigl_jax.training import build
from rigl_jax.training import config as config_lib
from rigl_jax.training import identity
from rigl_jax.training import results_file

# Metrics where lower is better; the others are accuracies.
LOWER_IS_BETTER = ('bits_per_char', 'loss')
_DISTRIBUTION_SUFFIXES = {
    'uniform': ' (uniform)',
    'erk': ' (ERK)',
    'erdos_renyi': ' (ER)',
}


@dataclasses.dataclass(frozen=True)
class Cell:
  """One method variant at one sparsity."""

  train_flops_ratio: float
  inference_flops_ratio: float
  metric: tuple[float, ...] = ()  # One value per run.

  @property
  def mean(self) -> float:
    return statistics.fmean(self.metric)

  @property
  def std(self) -> float:
    """Sample standard deviation; 0 for a single run."""
    return statistics.stdev(self.metric) if len(self.metric) > 1 else 0.0


Table = dict[str, dict[float, Cell]]


def row_label(
    method: str,
    distribution: Optional[str],
    multiplier: float,
    big_sparse: bool = False,
    structure: str = '',
) -> str:
  """As in the paper: 'RigL (uniform)', 'RigL 5x (ERK)', 'Big-Sparse RigL
  (ERK)'; a mask structure follows the name: 'RigL 2:4 (uniform)', 'SET
  fan-in (ERK)'.

  The dense model has no distribution (Small-Dense keeps the one of the
  sparse model it is sized against).
  """
  label = methods.display_name(method)
  if big_sparse:
    label = f'Big-Sparse {label}'
  if multiplier != 1:
    label += f' {multiplier:g}x'
  if structure:
    label += f' {structure}'
  if methods.reads_sparsity(method) and distribution:
    label += _DISTRIBUTION_SUFFIXES.get(distribution, f' ({distribution})')
  return label


def is_big_sparse(config: Mapping[str, Any]) -> bool:
  """A sparse model wider than the dense model its FLOPs compare with."""
  model = config.get('model', {})
  reference = model.get('reference_width')
  return (
      methods.uses_masks(config['method'])
      and reference is not None
      and model.get('width', 1.0) > reference
  )


def _row_order(label: str, config: Mapping[str, Any]) -> tuple[Any, ...]:
  """Rows by method, then by row without its multiplier, then multiplier
  as a number (so 5x comes before 5.61x)."""
  order = list(methods.METHODS)
  method = config['method']
  base, _ = cell_key({**config, 'training_multiplier': 1.0})
  return (
      order.index(method) if method in order else len(order),
      base,
      float(config.get('training_multiplier', 1.0)),
      label,
  )


# ---------------------------------------------------------------------------
# From results.json files.


def find_results(paths: Sequence[str]) -> list[str]:
  """results.json files: the given files and those under given directories."""
  files = []
  for path in paths:
    if os.path.isdir(path):
      files += glob.glob(
          os.path.join(path, '**', 'results.json'), recursive=True
      )
    else:
      files += glob.glob(path) or [path]
  if not files:
    raise FileNotFoundError(f'no results.json under {list(paths)}')
  return sorted(files)


# What tables read of a results.json: the run's config and metrics.
RUN_KEYS = ('config', 'eval')


def load_runs(
    paths: Sequence[str], required: Sequence[str] = RUN_KEYS
) -> list[tuple[str, dict[str, Any]]]:
  """(path, contents) of every results.json found under ``paths``.

  Raises:
    errors.ResultsFileError: a file cannot be read or lacks one of
      ``required`` (naming it); a table without that run would misreport
      its cell.
  """
  return [
      (path, results_file.read(path, required)) for path in find_results(paths)
  ]


def load_results(paths: Sequence[str]) -> list[dict[str, Any]]:
  return [result for _, result in load_runs(paths)]


def default_metric(results: Sequence[dict[str, Any]]) -> str:
  """bits_per_char for language models, else accuracy."""
  return (
      'bits_per_char'
      if all('bits_per_char' in r['eval'] for r in results)
      else 'accuracy'
  )


def _check_metric(run: Mapping[str, Any], metric: str) -> None:
  """A metric the run does not have is a typo in --metric, not a bug."""
  if metric not in run['eval']:
    raise errors.FlagError(
        f'--metric: a run has no eval metric {metric!r}; it has '
        f'{sorted(run["eval"])}'
    )


def cell_key(config: Mapping[str, Any]) -> tuple[str, float]:
  """(row label, sparsity) of a run's config; dense runs at sparsity 0."""
  method = config['method']
  sparse = methods.reads_sparsity(method)
  return (
      row_label(
          method,
          config['distribution'] if sparse else None,
          float(config['training_multiplier']),
          is_big_sparse(config),
          structure_label(config),
      ),
      float(config['sparsity']) if sparse else 0.0,
  )


def structure_label(config: Mapping[str, Any]) -> str:
  """'2:4', 'fan-in', or '' for unstructured masks (and configs before them)."""
  block = config.get('mask_structure') or {}
  kind = block.get('kind', 'unstructured')
  if kind == 'n_m':
    return f"{block['n']}:{block['m']}"
  return '' if kind == 'unstructured' else kind.replace('_', '-')


# Keys that place a run in a table (its row and column) or tell seeds apart.
_CELL_KEYS = (
    'mask_structure.kind',
    'mask_structure.n',
    'mask_structure.m',
    'method',
    'sparsity',
    'distribution',
    'training_multiplier',
    'model.width',
    'model.reference_width',
    'seed',
)


def varying_keys(results: Sequence[dict[str, Any]]) -> list[str]:
  """Identity keys whose values differ between the runs that read them,
  besides the table's own.

  Runs that differ in such a key (a learning rate, a drop fraction) are not
  seeds of one cell: they get rows of their own. A key that only some runs
  read (a method's own block) varies only if those runs disagree on it.
  """
  values = collections.defaultdict(set)
  for run in results:
    for key, value in identity.of_config(run['config']).items():
      values[key].add(json.dumps(value, sort_keys=True))
  return sorted(
      key
      for key, seen in values.items()
      if key not in _CELL_KEYS and len(seen) > 1
  )


def _variant(config: Mapping[str, Any], keys: Sequence[str]) -> str:
  """'key=value, ...' of the varying keys that this run reads."""
  read = identity.of_config(config)
  return ', '.join(
      f'{key}={_as_tuples(read[key])!r}' for key in keys if key in read
  )


def _as_tuples(value: Any) -> Any:
  if isinstance(value, list):
    return tuple(_as_tuples(v) for v in value)
  return value


def table_from_results(results: Sequence[dict[str, Any]], metric: str) -> Table:
  """Runs of the same row and sparsity that differ only in seed share a cell.

  Runs that also differ in another config key get separate rows, labelled
  with those keys' values; two runs of one cell with the same seed are
  reported as a warning (they are averaged as if they were seeds).
  """
  keys = varying_keys(results)
  buckets = collections.defaultdict(list)
  order_of = {}
  for run in results:
    _check_metric(run, metric)
    label, sparsity = cell_key(run['config'])
    variant = _variant(run['config'], keys)
    if variant:
      label += f' [{variant}]'
    buckets[label, sparsity].append(run)
    order_of[label] = _row_order(label, run['config'])
  for (label, sparsity), runs in buckets.items():
    seeds = [run['config'].get('seed') for run in runs]
    repeated = sorted({s for s in seeds if seeds.count(s) > 1}, key=str)
    if repeated:
      logging.warning(
          '%s at sparsity %g: %d runs share seed(s) %s; they are averaged '
          'as if they were different seeds',
          label,
          sparsity,
          len(runs),
          repeated,
      )
  table: Table = {}
  for label in sorted(order_of, key=order_of.get):
    table[label] = {
        sparsity: Cell(
            statistics.fmean(r['flops']['train_flops_ratio'] for r in runs),
            statistics.fmean(r['flops']['inference_flops_ratio'] for r in runs),
            tuple(float(r['eval'][metric]) for r in runs),
        )
        for (row, sparsity), runs in sorted(buckets.items())
        if row == label
    }
  return table


# ---------------------------------------------------------------------------
# From a config's FLOPs reports.


def _with(
    config: ml_collections.ConfigDict, **values: Any
) -> ml_collections.ConfigDict:
  """A copy with dotted keys set; an unknown key is a ``ConfigError``."""
  return config_lib.set_values(copy.deepcopy(config), values)


@dataclasses.dataclass(frozen=True)
class BigSparse:
  """The paper's Big-Sparse rows: wider sparse models.

  Attributes:
    widths: the model's width at each sparsity.
    methods: the methods of its rows.
    reference_width: the dense model its FLOPs compare with.
    overrides: other config values of its runs.
  """

  widths: Mapping[float, float]
  methods: tuple[str, ...] = ('rigl',)
  reference_width: float = 1.0
  overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def flops_table(
    config: ml_collections.ConfigDict,
    method_names: Sequence[str],
    sparsities: Sequence[float],
    distributions: Sequence[str],
    multipliers: Sequence[float],
    results: Sequence[dict[str, Any]] = (),
    metric: str = 'accuracy',
    big_sparse: Optional[BigSparse] = None,
) -> Table:
  """Rows of every method variant, FLOPs from ``build.flops_report``.

  Runs in ``results`` whose config has a cell's method, sparsity,
  distribution and multiplier give that cell its metric values.
  ``big_sparse`` adds the paper's Big-Sparse rows.
  """
  for name in tuple(method_names) + (big_sparse.methods if big_sparse else ()):
    methods.get_method_class(name)  # A clear error for a typo.
  by_cell = collections.defaultdict(list)
  for run in results:
    _check_metric(run, metric)
    by_cell[cell_key(run['config'])].append(float(run['eval'][metric]))

  def cell(overrides):
    cell_config = _with(config, **overrides)
    report = build.flops_report(cell_config)
    return Cell(
        report['train_flops_ratio'],
        report['inference_flops_ratio'],
        tuple(by_cell.get(cell_key(cell_config), ())),
    )

  table: Table = {}
  for name in method_names:
    dense = not methods.reads_sparsity(name)
    for distribution in distributions[:1] if dense else distributions:
      for multiplier in multipliers:
        table[row_label(name, distribution, multiplier)] = {
            sparsity: cell(
                {
                    'method': name,
                    'sparsity': sparsity,
                    'distribution': distribution,
                    'training_multiplier': multiplier,
                }
            )
            for sparsity in ((0.0,) if dense else sparsities)
        }
  if big_sparse:
    for name in big_sparse.methods:
      for distribution in distributions:
        table[row_label(name, distribution, 1.0, big_sparse=True)] = {
            sparsity: cell(
                {
                    'method': name,
                    'sparsity': sparsity,
                    'distribution': distribution,
                    'training_multiplier': 1.0,
                    'model.width': width,
                    'model.reference_width': big_sparse.reference_width,
                    **big_sparse.overrides,
                }
            )
            for sparsity, width in big_sparse.widths.items()
        }
  return table


def dense_reference(config: ml_collections.ConfigDict) -> str:
  """The absolute FLOPs that the ratios divide by, as one line."""
  report = build.flops_report(
      _with(config, method='dense', training_multiplier=1.0)
  )
  return (
      f'Dense (1x): {report["dense_train_flops"]:.3g} training FLOPs, '
      f'{report["dense_inference_flops"]:.3g} FLOPs per test example.'
  )


# ---------------------------------------------------------------------------
# Markdown.


def _format_metric(cell: Optional[Cell], metric: str) -> str:
  if cell is None or not cell.metric:
    return '-'
  scale, digits = (100.0, 2) if metric == 'accuracy' else (1.0, 3)
  if len(cell.metric) == 1:  # No spread to give.
    return f'{cell.mean * scale:.{digits}f} (n=1)'
  return (
      f'{cell.mean * scale:.{digits}f} ± {cell.std * scale:.{digits}f} '
      f'({len(cell.metric)})'
  )


def metric_title(metric: str) -> str:
  return 'Top-1 accuracy (%)' if metric == 'accuracy' else metric


def markdown_table(
    table: Table,
    metric: Optional[str],
    sparsities: Optional[Sequence[float]] = None,
) -> str:
  """The paper's Table 2: per sparsity the metric (if any) and FLOPs ratios.

  Args:
    table: rows of cells.
    metric: the metric's name, or None for FLOPs columns only.
    sparsities: the column groups (default: every sparsity in the table).
  """
  if sparsities is None:
    sparsities = sorted({s for cells in table.values() for s in cells if s > 0})
  columns = ([metric_title(metric)] if metric else []) + [
      'FLOPs (Train)',
      'FLOPs (Test)',
  ]
  header = ['Method'] + [
      f'{column} @ {s:g}' for s in sparsities for column in columns
  ]
  lines = [
      '| ' + ' | '.join(header) + ' |',
      '|' + '|'.join([':---'] + ['---:'] * (len(header) - 1)) + '|',
  ]
  for label, cells in table.items():
    row = [label]
    for sparsity in sparsities:
      # Dense models have no sparsity: the same numbers in every group.
      cell = cells.get(sparsity, cells.get(0.0))
      if metric:
        row.append(_format_metric(cell, metric))
      row += (
          ['-', '-']
          if cell is None
          else [
              f'{cell.train_flops_ratio:.2f}x',
              f'{cell.inference_flops_ratio:.2f}x',
          ]
      )
    lines.append('| ' + ' | '.join(row) + ' |')
  return '\n'.join(lines)


# ---------------------------------------------------------------------------
# Plots (matplotlib: the ``plots`` extra).


def pyplot() -> Optional[Any]:
  """matplotlib's pyplot on a file backend, or None without the extra."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  return plt


def _row_colors(plt, table: Table) -> dict[str, Any]:
  """One color per row, the same in every plot of a report."""
  cycle = plt.rcParams['axes.prop_cycle'].by_key()['color']
  return {label: cycle[i % len(cycle)] for i, label in enumerate(table)}


def plot_metric_vs_sparsity(
    plt, table: Table, metric: str, path: str, title: str
) -> None:
  figure, axes = plt.subplots(figsize=(7, 4.5))
  colors = _row_colors(plt, table)
  sparsities = sorted({s for cells in table.values() for s in cells if s > 0})
  for label, cells in table.items():
    if set(cells) == {0.0}:  # Dense: a horizontal reference line.
      axes.axhline(
          cells[0.0].mean,
          color=colors[label],
          linestyle='--',
          linewidth=1,
          label=label,
      )
      continue
    xs = [s for s in sparsities if s in cells]
    axes.errorbar(
        xs,
        [cells[s].mean for s in xs],
        yerr=[cells[s].std for s in xs],
        marker='o',
        capsize=3,
        color=colors[label],
        label=label,
    )
  axes.set_xlabel('sparsity')
  axes.set_ylabel(metric)
  axes.set_title(title or f'{metric} vs sparsity')
  axes.grid(alpha=0.3)
  axes.legend(fontsize=8, ncol=2)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def plot_metric_vs_train_flops(
    plt, table: Table, metric: str, path: str, title: str
) -> None:
  figure, axes = plt.subplots(figsize=(7, 4.5))
  colors = _row_colors(plt, table)
  for label, cells in table.items():
    items = sorted(cells.values(), key=lambda cell: cell.train_flops_ratio)
    axes.errorbar(
        [c.train_flops_ratio for c in items],
        [c.mean for c in items],
        yerr=[c.std for c in items],
        marker='o',
        capsize=3,
        color=colors[label],
        label=label,
    )
  axes.set_xscale('log')
  axes.set_xlabel('training FLOPs relative to dense (log scale)')
  axes.set_ylabel(metric)
  axes.set_title(title or f'{metric} vs training FLOPs')
  axes.grid(alpha=0.3, which='both')
  axes.legend(fontsize=8, ncol=2)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def _length_curves(
    results: Sequence[dict[str, Any]], metric: str
) -> dict[float, dict[str, list[tuple[float, float, Cell]]]]:
  """sparsity -> row label without its multiplier -> (multiplier, cell)
  sorted by training FLOPs; dense runs at sparsity 0."""
  runs = collections.defaultdict(list)
  for run in results:
    config = run['config']
    label, sparsity = cell_key({**config, 'training_multiplier': 1.0})
    runs[sparsity, label, float(config['training_multiplier'])].append(run)
  curves = collections.defaultdict(lambda: collections.defaultdict(list))
  for (sparsity, label, multiplier), group in sorted(runs.items()):
    cell = Cell(
        statistics.fmean(r['flops']['train_flops_ratio'] for r in group),
        statistics.fmean(r['flops']['inference_flops_ratio'] for r in group),
        tuple(float(r['eval'][metric]) for r in group),
    )
    curves[sparsity][label].append((multiplier, cell))
  for by_label in curves.values():
    for points in by_label.values():
      points.sort(key=lambda point: point[1].train_flops_ratio)
  return curves


def plot_metric_vs_training_length(
    plt, results: Sequence[dict[str, Any]], metric: str, path: str, title: str
) -> None:
  """The paper's Figure 2: a panel per sparsity, a line per method through
  its training multipliers (each point labelled), dense runs dashed."""
  curves = _length_curves(results, metric)
  dense = curves.pop(0.0, {})
  sparsities = sorted(curves)
  figure, panels = plt.subplots(
      1, len(sparsities), figsize=(5 * len(sparsities), 4.5), squeeze=False
  )
  labels = sorted({label for by_label in curves.values() for label in by_label})
  cycle = plt.rcParams['axes.prop_cycle'].by_key()['color']
  colors = {label: cycle[i % len(cycle)] for i, label in enumerate(labels)}
  for axes, sparsity in zip(panels[0], sparsities):
    for label, points in dense.items():
      for _, cell in points:
        axes.axhline(
            cell.mean, color='gray', linestyle='--', linewidth=1, label=label
        )
    for label, points in sorted(curves[sparsity].items()):
      xs = [cell.train_flops_ratio for _, cell in points]
      ys = [cell.mean for _, cell in points]
      axes.errorbar(
          xs,
          ys,
          yerr=[cell.std for _, cell in points],
          marker='o',
          capsize=3,
          color=colors[label],
          label=label,
      )
      for (multiplier, _), x, y in zip(points, xs, ys):
        axes.annotate(
            f'{multiplier:g}x',
            (x, y),
            textcoords='offset points',
            xytext=(4, -10),
            fontsize=7,
            color=colors[label],
        )
    axes.set_xscale('log')
    axes.set_xlabel('training FLOPs relative to dense 1x (log scale)')
    axes.set_ylabel(metric)
    axes.set_title(f'sparsity {sparsity:g}')
    axes.grid(alpha=0.3, which='both')
    axes.legend(fontsize=8)
  if title:
    figure.suptitle(title)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def write_report(
    paths: Sequence[str],
    output_dir: str,
    metric: str = '',
    title: str = '',
    command: str = '',
) -> str:
  """Writes table.md and (with matplotlib) the plots; returns the table.

  Args:
    paths: results.json files or directories holding them.
    output_dir: where table.md and the plots go.
    metric: the eval metric (default: ``default_metric``).
    title: the table's and plots' title.
    command: the command line that made the report, recorded in the
      table's provenance section (default: this function's call).
  """
  runs = load_runs(paths, RUN_KEYS + ('flops',))
  results = [result for _, result in runs]
  command = command or f'reports.write_report({list(paths)!r}, ...)'
  metric = metric or default_metric(results)
  table = table_from_results(results, metric)
  os.makedirs(output_dir, exist_ok=True)
  better = 'lower' if metric in LOWER_IS_BETTER else 'higher'
  text = markdown_table(table, metric)
  with open(os.path.join(output_dir, 'table.md'), 'w') as f:
    if title:
      f.write(f'## {title}\n\n')
    f.write(
        f'{metric}: mean ± sample std over seeds (number of runs); '
        f'{better} is better. FLOPs relative to the dense model (train: '
        'dense at the 1x schedule).\n\n' + text + '\n\n'
    )
    f.write(table_provenance.section(runs, command))
  plt = pyplot()
  if plt is None:
    print(
        'Plots skipped: matplotlib is not installed (pip install -e '
        "'.[plots]')."
    )
    return text
  plot_metric_vs_sparsity(
      plt,
      table,
      metric,
      os.path.join(output_dir, 'metric_vs_sparsity.png'),
      title,
  )
  plot_metric_vs_train_flops(
      plt,
      table,
      metric,
      os.path.join(output_dir, 'metric_vs_train_flops.png'),
      title,
  )
  if len({r['config']['training_multiplier'] for r in results}) > 1:
    plot_metric_vs_training_length(
        plt,
        results,
        metric,
        os.path.join(output_dir, 'metric_vs_training_length.png'),
        title,
    )
  return text
