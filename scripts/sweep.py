r"""Expands a sweep from experiments/ into runs: prints or runs the commands.

An experiment file defines ``CONFIG`` (a config path) and ``runs()``, a list
of dicts of config overrides (a run's 'config' key replaces ``CONFIG``).
Every run gets its own workdir under ``--root``, named by its overrides.

  # Print the commands (for a cluster scheduler or a shell loop):
  python scripts/sweep.py experiments/table2_resnet50.py --root=/data/sweeps

  # Run them one after another here; finished runs are skipped, so running
  # the same command again continues an interrupted sweep:
  python scripts/sweep.py experiments/mnist_lenet300.py --root=/tmp/sweeps \
      --set=dataset.local_dir=../shared/data/mnist --run

``--set=key=value`` adds an override to every run; ``--only=key=value``
keeps the runs with that override.
"""

import importlib.util
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from absl import app
from absl import flags

_ROOT = flags.DEFINE_string('root', None, 'Directory for the runs\' workdirs.')
_RUN = flags.DEFINE_bool('run', False, 'Run the commands here, in order.')
_SET = flags.DEFINE_multi_string('set', [], 'key=value added to every run.')
_ONLY = flags.DEFINE_multi_string('only', [], 'Keep runs with key=value.')
_MAX_RUNS = flags.DEFINE_integer(
    'max_runs', 0, 'Keep only the first N runs (0: all).')
flags.mark_flag_as_required('root')


def load_experiment(path: str) -> tuple[str, list[dict[str, Any]]]:
  """The default config and the list of runs of an experiment file."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: experiment file not found')
  spec = importlib.util.spec_from_file_location('experiment', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  for name in ('CONFIG', 'runs'):
    if not hasattr(module, name):
      raise ValueError(f'{path}: an experiment defines CONFIG and runs()')
  return module.CONFIG, list(module.runs())


def _format(value: Any) -> str:
  if isinstance(value, float):
    return f'{value:g}'
  if isinstance(value, (tuple, list)):
    return repr(tuple(value))
  return str(value)


def run_name(overrides: dict[str, Any]) -> str:
  """A directory name from a run's own overrides, e.g. method=rigl,sparsity=0.9."""
  parts = [f'{k}={_format(v)}' for k, v in overrides.items() if k != 'config']
  if 'config' in overrides:
    parts.insert(0, os.path.splitext(os.path.basename(overrides['config']))[0])
  return ','.join(parts).replace('/', '_').replace(' ', '') or 'default'


def parse_pairs(pairs: Sequence[str]) -> dict[str, str]:
  result = {}
  for pair in pairs:
    key, sep, value = pair.partition('=')
    if not sep:
      raise ValueError(f'{pair!r} is not key=value')
    result[key] = value
  return result


def command(config: str, overrides: dict[str, Any], extra: dict[str, str],
            workdir: str) -> list[str]:
  """The ``rigl_jax.main`` command line of one run."""
  args = ['python', '-m', 'rigl_jax.main', f'--config={config}',
          f'--workdir={workdir}']
  for key, value in {**overrides, **extra}.items():
    if key != 'config':
      args.append(f'--config.{key}={_format(value)}')
  return args


def expand(experiment_path: str, root: str, extra: dict[str, str],
           only: dict[str, str]) -> list[tuple[str, list[str]]]:
  """(workdir, command) of every selected run of an experiment."""
  default_config, runs = load_experiment(experiment_path)
  name = os.path.splitext(os.path.basename(experiment_path))[0]
  selected = []
  for overrides in runs:
    if any(_format(overrides.get(k)) != v for k, v in only.items()):
      continue
    workdir = os.path.join(root, name, run_name(overrides))
    config = overrides.get('config', default_config)
    selected.append((workdir, command(config, overrides, extra, workdir)))
  return selected


def main(argv: Sequence[str]) -> None:
  if len(argv) != 2:
    raise app.UsageError('usage: sweep.py EXPERIMENT.py --root=DIR [--run]')
  runs = expand(argv[1], _ROOT.value, parse_pairs(_SET.value),
                parse_pairs(_ONLY.value))
  if _MAX_RUNS.value:
    runs = runs[:_MAX_RUNS.value]
  if not _RUN.value:
    for _, args in runs:
      print(shlex.join(args))
    return
  failed = []
  for i, (workdir, args) in enumerate(runs, 1):
    if os.path.exists(os.path.join(workdir, 'results.json')):
      print(f'[{i}/{len(runs)}] done already: {workdir}', flush=True)
      continue
    print(f'[{i}/{len(runs)}] {shlex.join(args)}', flush=True)
    start = time.time()
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, 'log.txt'), 'a') as log:
      returncode = subprocess.call([sys.executable] + args[1:], stdout=log,
                                   stderr=subprocess.STDOUT)
    print(f'    exit {returncode} after {time.time() - start:.0f} s', flush=True)
    if returncode:
      failed.append(workdir)
  if failed:
    print(f'{len(failed)} of {len(runs)} runs failed (see log.txt):',
          *failed, sep='\n  ')
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)
