"""Sweeps: experiment files expanded into runs, and running them.

An experiment file (``experiments/*.py``) defines ``CONFIG`` (a config path)
and ``runs()``, a list of dicts of config overrides (a run's 'config' key
replaces ``CONFIG``). Every run gets its own workdir under a root, named by
its overrides and by every ``--set`` value that can change its result; a
run whose workdir holds a results.json is skipped only when the config
stored there has every one of its values. ``scripts/sweep.py`` is the
command line.
"""

from concurrent import futures
import importlib.util
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from rigl_jax import errors
from rigl_jax.training import config as config_lib
from rigl_jax.training import identity

# Keys that cannot change a run's result do not name workdirs (a run may
# be resumed with other values, and num_train_steps does change it).
_RESULT_NEUTRAL_KEYS = tuple(
    key for key in identity.SAFE_TO_CHANGE if key != 'num_train_steps'
)


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


def experiment_name(path: str) -> str:
  """An experiment's name: its file's, e.g. 'mnist_lenet300'."""
  return os.path.splitext(os.path.basename(path))[0]


def _as_tuples(value: Any) -> Any:
  if isinstance(value, (tuple, list)):
    return tuple(_as_tuples(v) for v in value)
  return value


def _format(value: Any) -> str:
  if isinstance(value, float):
    return f'{value:g}'
  if isinstance(value, (tuple, list)):
    return repr(_as_tuples(value))  # JSON stores tuples as lists.
  return str(value)


def run_name(overrides: dict[str, Any]) -> str:
  """A directory name from a run's own overrides, e.g. method=rigl,sparsity=0.9."""
  parts = [f'{k}={_format(v)}' for k, v in overrides.items() if k != 'config']
  if 'config' in overrides:
    parts.insert(0, os.path.splitext(os.path.basename(overrides['config']))[0])
  name = ','.join(parts).replace('/', '_').replace(' ', '')
  # Quotes, brackets and the like make paths hard to type and to glob.
  return re.sub(r'[^\w.=,+^-]', '', name) or 'default'


def parse_pairs(pairs: Sequence[str]) -> dict[str, str]:
  result = {}
  for pair in pairs:
    key, sep, value = pair.partition('=')
    if not sep:
      raise ValueError(f'{pair!r} is not key=value')
    result[key] = value
  return result


def command(
    config: str, overrides: dict[str, Any], extra: dict[str, str], workdir: str
) -> list[str]:
  """The ``rigl_jax.main`` command line of one run."""
  args = [
      'python',
      '-m',
      'rigl_jax.main',
      f'--config={config}',
      f'--workdir={workdir}',
  ]
  for key, value in {**overrides, **extra}.items():
    if key != 'config':
      args.append(f'--config.{key}={_format(value)}')
  return args


def expand(
    experiment_path: str, root: str, extra: dict[str, str], only: dict[str, str]
) -> list[tuple[str, list[str]]]:
  """(workdir, command) of every selected run of an experiment."""
  default_config, runs = load_experiment(experiment_path)
  name = experiment_name(experiment_path)
  selected = []
  for overrides in runs:
    if any(_format(overrides.get(k)) != v for k, v in only.items()):
      continue
    named = {
        **overrides,
        **{k: v for k, v in extra.items() if k not in _RESULT_NEUTRAL_KEYS},
    }
    workdir = os.path.join(root, name, run_name(named))
    config = overrides.get('config', default_config)
    selected.append((workdir, command(config, overrides, extra, workdir)))
  return selected


def _stored_value(config: Mapping[str, Any], key: str) -> Any:
  node: Any = config
  for part in key.split('.'):
    if not isinstance(node, Mapping) or part not in node:
      return _MISSING
    node = node[part]
  return node


_MISSING = object()


def stored_config_mismatch(workdir: str, args: Sequence[str]) -> Optional[str]:
  """How results.json's config differs from a command's overrides, or None.

  Compares every ``--config.key=value`` of ``args`` (data paths excepted)
  with the config stored in ``workdir/results.json``.
  """
  with open(os.path.join(workdir, 'results.json'), encoding='utf-8') as f:
    stored = json.load(f).get('config', {})
  differences = []
  for arg in args:
    if not arg.startswith('--config.'):
      continue
    key, _, text = arg[len('--config.') :].partition('=')
    if key in _RESULT_NEUTRAL_KEYS:
      continue
    value = _stored_value(stored, key)
    if value is _MISSING or _format(value) != _format(
        config_lib.parse_value(text)
    ):
      shown = 'missing' if value is _MISSING else _format(value)
      differences.append(f'{key}: stored {shown}, wanted {text}')
  return '; '.join(differences) or None


# Of an accelerator's memory, the part the parallel runs share.
SHARED_MEMORY_FRACTION = 0.9


def run_environment(parallel: int) -> dict[str, str]:
  """The environment of each run: its share of the accelerator's memory.

  JAX preallocates 75% of a GPU's memory by default, so a second run on
  the same GPU would find none; each of N runs preallocates 1/N of 90%
  instead. Settings already in the environment are kept.
  """
  env = dict(os.environ)
  if parallel > 1 and 'XLA_PYTHON_CLIENT_MEM_FRACTION' not in env:
    env['XLA_PYTHON_CLIENT_MEM_FRACTION'] = (
        f'{SHARED_MEMORY_FRACTION / parallel:.3f}'
    )
  return env


def _wait(process: subprocess.Popen, deadline: Optional[float]) -> int:
  """The exit code of ``process``, sent SIGTERM at ``deadline`` if running."""
  try:
    return process.wait(
        None if deadline is None else max(0.0, deadline - time.time())
    )
  except subprocess.TimeoutExpired:
    process.send_signal(signal.SIGTERM)
    return process.wait()


def run_all(
    runs: list[tuple[str, list[str]]],
    parallel: int,
    time_budget: Optional[float] = None,
) -> list[str]:
  """Runs the commands, ``parallel`` at a time; returns the failed workdirs.

  Each run logs to ``workdir/log.txt``. A run with a results.json whose
  config has the run's values is skipped; one whose config differs fails
  without running (its workdir belongs to another run). After
  ``time_budget`` seconds the runs still going get SIGTERM, which makes
  them write a checkpoint and exit (running the sweep again continues
  them), and no other run starts.
  """
  env = run_environment(parallel)
  print_lock = threading.Lock()
  deadline = None if time_budget is None else time.time() + time_budget

  def report(*parts: str) -> None:
    with print_lock:
      print(*parts, flush=True)

  def run_one(i: int, workdir: str, args: list[str]) -> bool:
    if os.path.exists(os.path.join(workdir, 'results.json')):
      mismatch = stored_config_mismatch(workdir, args)
      if mismatch:
        report(
            f'[{i}/{len(runs)}] {workdir} holds the results of another '
            f'config ({mismatch}); not run'
        )
        return False
      report(f'[{i}/{len(runs)}] done already: {workdir}')
      return True
    if deadline is not None and time.time() >= deadline:
      report(f'[{i}/{len(runs)}] not started (time budget spent): {workdir}')
      return False
    report(f'[{i}/{len(runs)}] {shlex.join(args)}')
    start = time.time()
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, 'log.txt'), 'a') as log:
      returncode = _wait(
          subprocess.Popen(
              [sys.executable] + args[1:],
              stdout=log,
              stderr=subprocess.STDOUT,
              env=env,
          ),
          deadline,
      )
    stopped = ' (checkpointed; the same command continues it)' * (
        returncode == errors.Preempted.exit_code
    )
    report(
        f'[{i}/{len(runs)}] exit {returncode}{stopped} after '
        f'{time.time() - start:.0f} s: {workdir}'
    )
    return returncode == 0

  with futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
    succeeded = list(
        pool.map(
            lambda run: run_one(*run),
            [(i, w, a) for i, (w, a) in enumerate(runs, 1)],
        )
    )
  return [workdir for (workdir, _), ok in zip(runs, succeeded) if not ok]
