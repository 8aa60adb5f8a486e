r"""Tables and plots from the results.json files of a sweep.

Runs are grouped by method, distribution, training multiplier and sparsity;
seeds are averaged. Writes to --output_dir:

- ``table.md``: the paper's Table 2 layout, a row per method (and
  distribution and multiplier), a column group per sparsity with the final
  metric as mean ± sample std over seeds (n runs), and the training and
  inference FLOPs relative to the dense model;
- ``metric_vs_sparsity.png``: the metric against sparsity, a line per method;
- ``metric_vs_train_flops.png``: the metric against training FLOPs;
- ``metric_vs_training_length.png``, when the runs differ in
  training_multiplier: a panel per sparsity, a line per method through its
  multipliers (each point labelled), the metric against training FLOPs (the
  paper's Figure 2).

The plots need matplotlib (``pip install -e '.[plots]'``); without it only
the table is written.

A results.json that cannot be read (cut short, not JSON, or without a
finished run's keys) stops the report with one line naming it, rather than
leaving that run out of its cell: running that run's command again writes
it from the run's last checkpoint.

  python scripts/report.py --output_dir=docs/results/mnist \
      /tmp/sweeps/mnist_lenet300
"""

from collections.abc import Sequence

from absl import app
from absl import flags

from rigl_jax import command_line
from rigl_jax import reports
from rigl_jax import table_provenance

_OUTPUT_DIR = flags.DEFINE_string(
    'output_dir', None, 'Where table.md and the plots go.'
)
_METRIC = flags.DEFINE_string(
    'metric',
    '',
    "eval metric to report; default 'bits_per_char' when runs "
    "have it, else 'accuracy'",
)
_TITLE = flags.DEFINE_string('title', '', 'Title above the table and plots.')
flags.mark_flag_as_required('output_dir')


def main(argv: Sequence[str]) -> None:
  if len(argv) < 2:
    raise app.UsageError('usage: report.py --output_dir=DIR SWEEP_DIR...')
  table = reports.write_report(
      argv[1:],
      _OUTPUT_DIR.value,
      _METRIC.value,
      _TITLE.value,
      command=table_provenance.script_command(),
  )
  print(table)


if __name__ == '__main__':
  # A results.json that cannot be read, a missing directory or an unknown
  # --metric: one line, as rigl_jax.main.
  command_line.run(main, 'report')
