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
import time
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from rigl_jax import errors
from rigl_jax.training import config as config_lib
from rigl_jax.training import identity
from rigl_jax.training import preemption
from rigl_jax.training import results_file

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
      raise errors.ConfigError(
          f'{path}: an experiment defines CONFIG and runs()'
      )
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


def parse_pairs(pairs: Sequence[str], flag: str = '--set') -> dict[str, str]:
  """{key: value} of ``flag``'s 'key=value' strings.

  Raises:
    errors.FlagError: a string is not key=value (naming ``flag``).
  """
  result = {}
  for pair in pairs:
    key, sep, value = pair.partition('=')
    if not sep or not key:
      raise errors.FlagError(f'{flag}={pair}: not key=value')
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
  if runs and not selected:
    raise errors.FlagError(_no_match(experiment_path, runs, only))
  return selected


def _no_match(
    experiment_path: str, runs: Sequence[dict[str, Any]], only: dict[str, str]
) -> str:
  """Why ``--only`` keeps no run: the values each of its keys takes."""
  values = []
  for key in only:
    taken = sorted({_format(r[key]) for r in runs if key in r})
    values.append(
        f'{key} is one of {", ".join(taken)}' if taken else f'no run sets {key}'
    )
  selection = ' '.join(f'--only={k}={v}' for k, v in only.items())
  return (
      f'{selection} keeps none of the {len(runs)} runs of '
      f'{experiment_path}: {"; ".join(values)}'
  )


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

  Raises:
    errors.ResultsFileError: results.json cannot be read (naming it).
  """
  stored = results_file.read(
      os.path.join(workdir, results_file.NAME), ('config',)
  )['config']
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


class _Runs:
  """The runs' processes; a signal to the sweep goes on to each of them.

  SIGTERM, Ctrl-C or SIGHUP to the sweep: every running run gets the same
  signal (it writes a checkpoint and exits 75) and no other run starts; a
  second signal aborts the runs. Each run has a session of its own, so a
  terminal's Ctrl-C or hang-up reaches it once, through the sweep.
  """

  def __init__(self):
    self._lock = threading.Lock()
    self._running = set()
    self.stopped_by: Optional[str] = None  # The signal's name.
    self._previous_handlers = {}

  def __enter__(self) -> '_Runs':
    # Handlers can only be installed from the main thread.
    if threading.current_thread() is threading.main_thread():
      for signum in preemption.STOP_SIGNALS:
        self._previous_handlers[signum] = signal.signal(signum, self._forward)
    return self

  def __exit__(self, *exc_info) -> None:
    for signum, handler in self._previous_handlers.items():
      signal.signal(signum, handler)
    self._previous_handlers = {}

  def start(self, args: list[str], **kwargs: Any) -> Optional[subprocess.Popen]:
    """Starts a run, or returns None once the sweep stops."""
    with self._lock:
      if self.stopped_by is not None:
        return None
      process = subprocess.Popen(args, start_new_session=True, **kwargs)
      self._running.add(process)
      return process

  def finished(self, process: subprocess.Popen) -> None:
    with self._lock:
      self._running.discard(process)

  def _forward(self, signum, frame) -> None:
    del frame
    if signum == getattr(signal, 'SIGHUP', None):
      preemption.detach_from_terminal()
    name = signal.Signals(signum).name
    with self._lock:
      first = self.stopped_by is None
      self.stopped_by = self.stopped_by or name
      for process in self._running:
        process.send_signal(signum)
    _print_line(
        f'sweep.py: {name}: the running runs write a checkpoint and stop, '
        'no other run starts (again to abort them)'
        if first
        else f'sweep.py: {name} again: aborting the running runs'
    )


def _print_line(text: str) -> None:
  """Prints a line; a closed terminal (SIGHUP) must not stop the sweep."""
  try:
    print(text, flush=True)
  except OSError:
    pass


def _ending(returncode: int) -> str:
  """What a run's exit code means for the sweep."""
  if returncode == errors.Preempted.exit_code:
    return ' (checkpointed; the same command continues it)'
  if returncode == preemption.ABORTED_EXIT_CODE:
    return (
        ' (aborted without a checkpoint; the same command continues it '
        'from its last one)'
    )
  return ''


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
  them), and no other run starts. So does SIGTERM, Ctrl-C or SIGHUP to
  the sweep (from the main thread), which then raises ``errors.Preempted``.
  """
  env = run_environment(parallel)
  print_lock = threading.Lock()
  deadline = None if time_budget is None else time.time() + time_budget

  def report(text: str) -> None:
    with print_lock:
      _print_line(text)

  def run_one(i: int, workdir: str, args: list[str]) -> bool:
    if os.path.exists(os.path.join(workdir, results_file.NAME)):
      try:
        mismatch = stored_config_mismatch(workdir, args)
      except errors.ResultsFileError as e:
        report(
            f'[{i}/{len(runs)}] {e}; not run: move it away and run the '
            'sweep again (the run resumes from its last checkpoint and '
            'writes it again)'
        )
        return False
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
    if children.stopped_by is not None:
      report(
          f'[{i}/{len(runs)}] not started ({children.stopped_by}): {workdir}'
      )
      return False
    report(f'[{i}/{len(runs)}] {shlex.join(args)}')
    start = time.time()
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, 'log.txt'), 'a') as log:
      process = children.start(
          [sys.executable] + args[1:],
          stdout=log,
          stderr=subprocess.STDOUT,
          env=env,
      )
      if process is None:  # A signal came after the check above.
        report(
            f'[{i}/{len(runs)}] not started ({children.stopped_by}): '
            f'{workdir}'
        )
        return False
      try:
        returncode = _wait(process, deadline)
      finally:
        children.finished(process)
    report(
        f'[{i}/{len(runs)}] exit {returncode}{_ending(returncode)} after '
        f'{time.time() - start:.0f} s: {workdir}'
    )
    return returncode == 0

  with _Runs() as children:
    with futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
      succeeded = list(
          pool.map(
              lambda run: run_one(*run),
              [(i, w, a) for i, (w, a) in enumerate(runs, 1)],
          )
      )
  if children.stopped_by is not None:
    raise errors.Preempted(
        f'stopped by {children.stopped_by}: the runs that were running '
        'wrote a checkpoint (see above); the same command continues the '
        'sweep'
    )
  return [workdir for (workdir, _), ok in zip(runs, succeeded) if not ok]
