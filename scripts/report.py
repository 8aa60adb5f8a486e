r"""Tables and plots from the results.json files of a sweep.

Runs are grouped by method, distribution, training multiplier and sparsity;
seeds are averaged. Writes to --output_dir:

- ``table.md``: the paper's Table 2 layout, a row per method (and
  distribution and multiplier), a column group per sparsity with the final
  metric as mean ± sample std over seeds (n runs), and the training and
  inference FLOPs relative to the dense model;
- ``metric_vs_sparsity.png``: the metric against sparsity, a line per method;
- ``metric_vs_train_flops.png``: the metric against training FLOPs (the
  paper's Figure 2).

The plots need matplotlib (``pip install -e '.[plots]'``); without it only
the table is written.

  python scripts/report.py --output_dir=docs/results/mnist \
      /tmp/sweeps/mnist_lenet300
"""

import collections
import dataclasses
import glob
import json
import math
import os
import statistics
from collections.abc import Sequence
from typing import Any, Optional

from absl import app
from absl import flags

from rigl_jax.sparse import methods

_OUTPUT_DIR = flags.DEFINE_string('output_dir', None,
                                  'Where table.md and the plots go.')
_METRIC = flags.DEFINE_string(
    'metric', '', "eval metric to report; default 'bits_per_char' when runs "
    "have it, else 'accuracy'")
_TITLE = flags.DEFINE_string('title', '', 'Title above the table and plots.')
flags.mark_flag_as_required('output_dir')

LOWER_IS_BETTER = ('bits_per_char', 'loss')


@dataclasses.dataclass(frozen=True)
class Run:
  """What a results.json says about one run."""
  method: str
  distribution: Optional[str]  # None for dense methods
  multiplier: float
  sparsity: float  # the configured target (0 for dense)
  metric: float
  train_flops_ratio: float
  inference_flops_ratio: float

  @property
  def row_label(self) -> str:
    label = methods.DISPLAY_NAMES.get(self.method, self.method)
    if self.multiplier != 1:
      label += f' {self.multiplier:g}x'
    if self.distribution and self.method != 'small_dense':
      label += f' ({"ERK" if self.distribution == "erk" else self.distribution})'
    return label


def default_metric(results: Sequence[dict[str, Any]]) -> str:
  return ('bits_per_char' if all('bits_per_char' in r['eval']
                                 for r in results) else 'accuracy')


def parse_run(results: dict[str, Any], metric: str) -> Run:
  config = results['config']
  method = config['method']
  dense = method == 'dense'
  return Run(
      method=method,
      distribution=None if dense else config['distribution'],
      multiplier=float(config['training_multiplier']),
      sparsity=0.0 if dense else float(config['sparsity']),
      metric=float(results['eval'][metric]),
      train_flops_ratio=float(results['flops']['train_flops_ratio']),
      inference_flops_ratio=float(results['flops']['inference_flops_ratio']))


def load_runs(paths: Sequence[str], metric: str) -> tuple[list[Run], str]:
  """Runs from results.json files found under ``paths`` (files or dirs)."""
  files = []
  for path in paths:
    if os.path.isdir(path):
      files += glob.glob(os.path.join(path, '**', 'results.json'),
                         recursive=True)
    else:
      files.append(path)
  if not files:
    raise FileNotFoundError(f'no results.json under {list(paths)}')
  contents = []
  for file in sorted(files):
    with open(file) as f:
      contents.append(json.load(f))
  metric = metric or default_metric(contents)
  return [parse_run(c, metric) for c in contents], metric


@dataclasses.dataclass(frozen=True)
class Cell:
  """The runs of one method and sparsity, over seeds."""
  mean: float
  std: float  # sample standard deviation; 0 for a single run
  count: int
  train_flops_ratio: float
  inference_flops_ratio: float


def summarize(runs: Sequence[Run]) -> Cell:
  values = [r.metric for r in runs]
  return Cell(
      mean=statistics.fmean(values),
      std=statistics.stdev(values) if len(values) > 1 else 0.0,
      count=len(values),
      train_flops_ratio=statistics.fmean(r.train_flops_ratio for r in runs),
      inference_flops_ratio=statistics.fmean(
          r.inference_flops_ratio for r in runs))


def group(runs: Sequence[Run]) -> dict[str, dict[float, Cell]]:
  """row label -> sparsity -> cell; dense rows sit at sparsity 0."""
  buckets = collections.defaultdict(list)
  for run in runs:
    buckets[(run.row_label, run.sparsity)].append(run)
  table: dict[str, dict[float, Cell]] = collections.defaultdict(dict)
  order = list(methods.DISPLAY_NAMES)
  for (label, sparsity), members in sorted(
      buckets.items(),
      key=lambda item: (order.index(item[1][0].method)
                        if item[1][0].method in order else len(order),
                        item[0])):
    table[label][sparsity] = summarize(members)
  return dict(table)


def _format_metric(cell: Cell, metric: str) -> str:
  scale, digits = (100.0, 2) if metric == 'accuracy' else (1.0, 3)
  return (f'{cell.mean * scale:.{digits}f} ± {cell.std * scale:.{digits}f} '
          f'({cell.count})')


def markdown_table(table: dict[str, dict[float, Cell]], metric: str) -> str:
  """The paper's Table 2 layout: per sparsity, metric and FLOPs ratios."""
  sparsities = sorted({s for cells in table.values() for s in cells if s > 0})
  name = 'Top-1 accuracy (%)' if metric == 'accuracy' else metric
  header = ['Method'] + [
      f'{column} @ {s:g}' for s in sparsities
      for column in (name, 'FLOPs (Train)', 'FLOPs (Test)')]
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '|'.join(['---'] + ['---:'] * (len(header) - 1)) + '|']
  for label, cells in table.items():
    row = [label]
    for sparsity in sparsities:
      # Dense methods have no sparsity: the same numbers in every group.
      cell = cells.get(sparsity, cells.get(0.0))
      if cell is None:
        row += ['-', '-', '-']
      else:
        row += [_format_metric(cell, metric),
                f'{cell.train_flops_ratio:.2f}x',
                f'{cell.inference_flops_ratio:.2f}x']
    lines.append('| ' + ' | '.join(row) + ' |')
  return '\n'.join(lines)


def pyplot() -> Optional[Any]:
  """matplotlib's pyplot on a file backend, or None without the extra."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def row_colors(plt, table) -> dict[str, Any]:
  """One color per row, the same in every plot of a report."""
  cycle = plt.rcParams['axes.prop_cycle'].by_key()['color']
  return {label: cycle[i % len(cycle)] for i, label in enumerate(table)}


def plot_metric_vs_sparsity(plt, table, metric: str, path: str,
                            title: str) -> None:
  figure, axes = plt.subplots(figsize=(7, 4.5))
  colors = row_colors(plt, table)
  sparsities = sorted({s for cells in table.values() for s in cells if s > 0})
  for label, cells in table.items():
    if set(cells) == {0.0}:  # Dense: a horizontal reference line.
      cell = cells[0.0]
      axes.axhline(cell.mean, color=colors[label], linestyle='--',
                   linewidth=1, label=label)
      continue
    xs = [s for s in sparsities if s in cells]
    axes.errorbar(xs, [cells[s].mean for s in xs],
                  yerr=[cells[s].std for s in xs], marker='o', capsize=3,
                  color=colors[label], label=label)
  axes.set_xlabel('sparsity')
  axes.set_ylabel(metric)
  axes.set_title(title or f'{metric} vs sparsity')
  axes.grid(alpha=0.3)
  axes.legend(fontsize=8, ncol=2)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def plot_metric_vs_train_flops(plt, table, metric: str, path: str,
                               title: str) -> None:
  figure, axes = plt.subplots(figsize=(7, 4.5))
  colors = row_colors(plt, table)
  for label, cells in table.items():
    items = sorted(cells.items(), key=lambda item: item[1].train_flops_ratio)
    axes.errorbar([c.train_flops_ratio for _, c in items],
                  [c.mean for _, c in items], yerr=[c.std for _, c in items],
                  marker='o', capsize=3, color=colors[label], label=label)
  axes.set_xscale('log')
  axes.set_xlabel('training FLOPs relative to dense (log scale)')
  axes.set_ylabel(metric)
  axes.set_title(title or f'{metric} vs training FLOPs')
  axes.grid(alpha=0.3, which='both')
  axes.legend(fontsize=8, ncol=2)
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  plt.close(figure)


def write_report(paths: Sequence[str], output_dir: str, metric: str = '',
                 title: str = '') -> str:
  """Writes table.md and the plots; returns the table."""
  runs, metric = load_runs(paths, metric)
  table = group(runs)
  os.makedirs(output_dir, exist_ok=True)
  better = 'lower' if metric in LOWER_IS_BETTER else 'higher'
  text = markdown_table(table, metric)
  with open(os.path.join(output_dir, 'table.md'), 'w') as f:
    if title:
      f.write(f'## {title}\n\n')
    f.write(f'{metric}: mean ± sample std over seeds (number of runs); '
            f'{better} is better. FLOPs relative to the dense model (train: '
            'dense at the 1x schedule).\n\n' + text + '\n')
  plt = pyplot()
  if plt is None:
    print("Plots skipped: matplotlib is not installed (pip install -e "
          "'.[plots]').")
    return text
  plot_metric_vs_sparsity(plt, table, metric,
                          os.path.join(output_dir, 'metric_vs_sparsity.png'),
                          title)
  plot_metric_vs_train_flops(
      plt, table, metric,
      os.path.join(output_dir, 'metric_vs_train_flops.png'), title)
  return text


def main(argv: Sequence[str]) -> None:
  if len(argv) < 2:
    raise app.UsageError('usage: report.py --output_dir=DIR SWEEP_DIR...')
  print(write_report(argv[1:], _OUTPUT_DIR.value, _METRIC.value,
                     _TITLE.value))


if __name__ == '__main__':
  app.run(main)
