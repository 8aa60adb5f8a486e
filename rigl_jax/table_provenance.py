"""Where a results table comes from: its command and its runs' provenance.

``scripts/report.py`` ends every table.md with a provenance section built
here from the runs' results.json (``provenance``: the rigl_jax commit,
package versions, device and host CPU; its date, or the file's
modification time for runs that predate it). A run without a recorded
commit is named as such, which the docs consistency test refuses, so a
stale table cannot pass for a current one.
"""

import collections
import datetime
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from typing import Any

HEADING = '### Provenance'
NOT_RECORDED = 'not recorded'


def script_command() -> str:
  """This process's command line, as a table's provenance names it."""
  return 'python ' + shlex.join(sys.argv)


def run_date(path: str, result: Mapping[str, Any]) -> str:
  """The run's UTC date: recorded, else its results.json's modification."""
  recorded = result.get('provenance', {}).get('date')
  if recorded:
    return recorded[:10]
  modified = os.path.getmtime(path)
  return datetime.datetime.fromtimestamp(
      modified, datetime.timezone.utc
  ).strftime('%Y-%m-%d')


def _counted(values: Sequence[str]) -> str:
  """'a (3), b (1)': each distinct value with its number of runs."""
  counts = collections.Counter(values)
  return ', '.join(f'{value} ({n})' for value, n in sorted(counts.items()))


def _short_commit(result: Mapping[str, Any]) -> str:
  commit = result.get('provenance', {}).get('git_commit')
  if not commit:
    return NOT_RECORDED
  return commit[:12] + ('+dirty' if commit.endswith('+dirty') else '')


def _versions(results: Sequence[Mapping[str, Any]]) -> str:
  by_package = collections.defaultdict(list)
  for result in results:
    versions = result.get('provenance', {}).get('versions') or {}
    for package, version in versions.items():
      if package != 'rigl_jax':
        by_package[package].append(version or 'absent')
  if not by_package:
    return NOT_RECORDED
  return '; '.join(
      f'{package} {_counted(found)}'
      for package, found in sorted(by_package.items())
  )


def section(
    runs: Sequence[tuple[str, Mapping[str, Any]]],
    command: str,
    dated_by: str = 'finished',
) -> str:
  """The markdown provenance section of a table made by ``command``.

  Args:
    runs: (results.json path, its contents) of every run in the table.
    command: the command line that wrote the table.
    dated_by: what the runs' dates are ('last recorded' for runs still
      training).
  """
  today = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d')
  results = [result for _, result in runs]
  commits = [_short_commit(r) for r in results]
  dates = sorted(run_date(path, result) for path, result in runs)
  devices = [
      r.get('provenance', {}).get('device_kind') or NOT_RECORDED
      for r in results
  ]
  host_cpus = [
      r.get('provenance', {}).get('host_cpu') or NOT_RECORDED for r in results
  ]
  lines = [
      HEADING,
      '',
      f'- Table: `{command}`, {today}.',
      f'- Runs: {len(runs)}, {dated_by} {dates[0]} to {dates[-1]}.',
      f'- rigl_jax commit (runs): {_counted(commits)}.',
      f'- Packages (runs): {_versions(results)}.',
      f'- Devices (runs): {_counted(devices)}.',
      f'- Host CPU (runs): {_counted(host_cpus)}.',
  ]
  return '\n'.join(lines) + '\n'
