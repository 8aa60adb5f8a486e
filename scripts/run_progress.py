r"""Where each run under a sweep root stands, from its workdir, as Markdown.

  python scripts/run_progress.py ROOT/EXPERIMENT

A row per workdir: finished or not, the step of its latest checkpoint
(where the same command resumes), its latest training speed and every
evaluation so far, read from results.json when the run has finished and
from the log.txt that scripts/sweep.py writes otherwise. The table ends with
the runs' provenance (commit, packages, device, host CPU): from results.json,
or from the line every session of rigl_jax.main logs at its start.
"""

import json
import os
import re
import sys
from typing import Any, NoReturn

from rigl_jax import table_provenance

# The metric lines of the run's log: '[STEP] eval/loss=..., eval/accuracy=...'.
_METRICS = re.compile(r'\] \[(\d+)\] (.*)$')
# The line rigl_jax.main logs at the start of every session.
_PROVENANCE = re.compile(r'\] Provenance: (\{.*\})$')


def _log_metrics(path: str) -> tuple[dict[int, float], float, dict[str, Any]]:
  """{step: eval accuracy}, the last steps/s and the last session's provenance.

  Read from a run's log.txt.
  """
  evals, speed, provenance = {}, float('nan'), {}
  if not os.path.exists(path):
    return evals, speed, provenance
  with open(path, errors='replace') as f:
    for line in f:
      started = _PROVENANCE.search(line)
      if started:
        try:
          provenance = json.loads(started.group(1))
        except ValueError:
          pass  # A line cut short by a killed run: an earlier one stands.
        continue
      match = _METRICS.search(line)
      if not match:
        continue
      values = dict(
          pair.split('=', 1)
          for pair in match.group(2).split(', ')
          if '=' in pair
      )
      if 'eval/accuracy' in values:
        evals[int(match.group(1))] = float(values['eval/accuracy'])
      if 'steps_per_second' in values:
        speed = float(values['steps_per_second'])
  return evals, speed, provenance


def _latest_checkpoint(workdir: str) -> int:
  directory = os.path.join(workdir, 'checkpoints')
  steps = (
      [int(n) for n in os.listdir(directory) if n.isdigit()]
      if (os.path.isdir(directory))
      else []
  )
  return max(steps, default=0)


def row(workdir: str) -> tuple[list[str], tuple[str, dict[str, Any]]]:
  """The run's table row; (its record's path, {'provenance': ...})."""
  results_path = os.path.join(workdir, 'results.json')
  log_path = os.path.join(workdir, 'log.txt')
  evals, speed, provenance = _log_metrics(log_path)
  record = log_path if os.path.exists(log_path) else workdir
  finished = 'no'
  if os.path.exists(results_path):
    try:
      with open(results_path, encoding='utf-8') as f:
        results = json.load(f)
      final_evals = {
          e['step']: e['accuracy'] for e in results['history']['eval']
      }
    except (OSError, ValueError, KeyError, TypeError) as e:
      # Named, and the log read instead; the run's command, run again,
      # writes it again from the last checkpoint.
      print(
          f'run_progress: {results_path}: cannot be read '
          f'({type(e).__name__}: {e})',
          file=sys.stderr,
      )
      finished = 'results.json unreadable'
    else:
      finished, evals = 'yes', final_evals
      # None when the session only evaluated (results.json rewritten).
      speed = results.get('steps_per_second') or speed
      if isinstance(results.get('provenance'), dict):
        provenance, record = results['provenance'], results_path
  history = ', '.join(f'{s}: {a:.4f}' for s, a in sorted(evals.items()))
  cells = [
      os.path.basename(workdir),
      finished,
      str(_latest_checkpoint(workdir)),
      f'{speed:.1f}',
      history or '-',
  ]
  return cells, (record, {'provenance': provenance})


def _fail(message: str, exit_code: int) -> NoReturn:
  """One line on stderr and an exit, as the other command lines."""
  print(f'run_progress: {message}', file=sys.stderr)
  sys.exit(exit_code)


def main(argv: list[str]) -> None:
  if len(argv) != 2:
    _fail('usage: python scripts/run_progress.py ROOT/EXPERIMENT', 2)
  root = argv[1]
  if not os.path.isdir(root):
    _fail(f'{root}: no such directory', 1)
  rows, runs = [], []
  for name in sorted(os.listdir(root)):
    if os.path.isdir(os.path.join(root, name)):
      cells, run = row(os.path.join(root, name))
      rows.append(cells)
      runs.append(run)
  print(
      '| run | finished | checkpoint step | steps/s | eval accuracy by step |'
  )
  print('|---|---|---|---|---|')
  for r in rows:
    print('| ' + ' | '.join(r) + ' |')
  if runs:
    print()
    print(
        table_provenance.section(
            runs, table_provenance.script_command(), dated_by='last recorded'
        ),
        end='',
    )


if __name__ == '__main__':
  main(sys.argv)
