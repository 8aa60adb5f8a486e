r"""Expands a sweep from experiments/ into runs: prints or runs the commands.

An experiment file defines ``CONFIG`` (a config path) and ``runs()``, a list
of dicts of config overrides (a run's 'config' key replaces ``CONFIG``).
Every run gets its own workdir under ``--root``, named by its overrides.

  # Print the commands (for a cluster scheduler or a shell loop):
  python scripts/sweep.py experiments/table2_resnet50.py --root=/data/sweeps

  # Run them here; finished runs are skipped, so running the same command
  # again continues an interrupted sweep:
  python scripts/sweep.py experiments/mnist_lenet300.py --root=/tmp/sweeps \
      --set=dataset.local_dir=../shared/data/mnist --run

  # Four runs at a time on one accelerator, each with a quarter of its memory:
  python scripts/sweep.py experiments/figure_wrn22_sparsity.py \
      --root=/tmp/sweeps --run --parallel=4

``--set=key=value`` adds an override to every run; ``--only=key=value``
keeps the runs with that override. The logic lives in ``rigl_jax.sweeps``. A failed run does not stop the others;
the failures are listed at the end and the exit code is 1.
"""

import shlex
import sys
from collections.abc import Sequence

from absl import app
from absl import flags

from rigl_jax import sweeps

_ROOT = flags.DEFINE_string('root', None, "Directory for the runs' workdirs.")
_RUN = flags.DEFINE_bool('run', False, 'Run the commands here.')
_SET = flags.DEFINE_multi_string('set', [], 'key=value added to every run.')
_ONLY = flags.DEFINE_multi_string('only', [], 'Keep runs with key=value.')
_MAX_RUNS = flags.DEFINE_integer(
    'max_runs', 0, 'Keep only the first N runs (0: all).'
)
_PARALLEL = flags.DEFINE_integer(
    'parallel',
    1,
    'With --run: runs at once, each with 1/N of the ' 'accelerator memory.',
)
_TIME_BUDGET = flags.DEFINE_float(
    'time_budget',
    None,
    'With --run: seconds after which the runs still going write a '
    'checkpoint and stop (the same command continues them).',
)
flags.mark_flag_as_required('root')


def main(argv: Sequence[str]) -> None:
  if len(argv) != 2:
    raise app.UsageError('usage: sweep.py EXPERIMENT.py --root=DIR [--run]')
  if _PARALLEL.value < 1:
    raise app.UsageError(f'--parallel must be >= 1, got {_PARALLEL.value}')
  runs = sweeps.expand(
      argv[1],
      _ROOT.value,
      sweeps.parse_pairs(_SET.value),
      sweeps.parse_pairs(_ONLY.value),
  )
  if _MAX_RUNS.value:
    runs = runs[: _MAX_RUNS.value]
  if not _RUN.value:
    for _, args in runs:
      print(shlex.join(args))
    return
  failed = sweeps.run_all(runs, _PARALLEL.value, _TIME_BUDGET.value)
  if failed:
    print(
        f'{len(failed)} of {len(runs)} runs failed (see log.txt):',
        *failed,
        sep='\n  ',
    )
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)
