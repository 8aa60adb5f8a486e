"""scripts/run_progress.py: a row per run of a sweep root."""

import json
import shutil
import subprocess
import sys

import numpy as np

from rigl_jax import table_provenance
from rigl_jax.training import provenance
from tests import fixtures


def run_progress(root) -> subprocess.CompletedProcess:
  return subprocess.run(
      [sys.executable, 'scripts/run_progress.py', str(root)],
      cwd=fixtures.REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=120,
      check=False,
  )


def table_rows(stdout: str) -> list[str]:
  """The rows under the table's header, up to the provenance section."""
  table = stdout.split('\n\n')[0]
  return table.strip().splitlines()[2:]


def test_an_unreadable_results_json_is_named_and_the_table_goes_on(tmp_path):
  finished = {
      'history': {'eval': [{'step': 12, 'accuracy': 0.5}]},
      # A session that only evaluated has no speed of its own.
      'steps_per_second': None,
  }
  for name, text in (
      ('a', json.dumps(finished, indent=2)[:40]),
      ('b', json.dumps(finished)),
  ):
    (tmp_path / name).mkdir()
    (tmp_path / name / 'results.json').write_text(text)
  process = run_progress(tmp_path)
  assert process.returncode == 0, process.stderr
  (line,) = process.stderr.strip().splitlines()
  assert line.startswith(
      f'run_progress: {tmp_path / "a" / "results.json"}: cannot be read '
      '(JSONDecodeError: '
  )
  assert table_rows(process.stdout) == [
      '| a | results.json unreadable | 0 | nan | - |',
      '| b | yes | 0 | nan | 12: 0.5000 |',
  ]


def test_runs_finished_or_still_training_name_the_code_that_ran_them(
    tmp_path,
):
  data = tmp_path / 'data'
  data.mkdir()
  fixtures.write_tiny_mnist(str(data), 64, 64, np.random.default_rng(0))
  finished = tmp_path / 'exp' / 'finished'
  process = fixtures.run_main(
      str(finished), fixtures.tiny_mnist_overrides(str(data))
  )
  assert process.returncode == 0, process.stderr[-2000:]
  # As scripts/sweep.py keeps it: the run's output is its log.txt.
  (finished / 'log.txt').write_text(process.stderr)
  # The same run as it was while still training: its log, no results.json.
  training = tmp_path / 'exp' / 'training'
  shutil.copytree(finished, training)
  (training / 'results.json').unlink()

  process = run_progress(tmp_path / 'exp')

  assert process.returncode == 0, process.stderr
  rows = table_rows(process.stdout)
  assert [row.split(' | ')[:2] for row in rows] == [
      ['| finished', 'yes'],
      ['| training', 'no'],
  ]
  commit = table_provenance._short_commit(
      {'provenance': {'git_commit': provenance.git_commit()}}
  )
  section = process.stdout.split(table_provenance.HEADING)[1]
  assert f'- rigl_jax commit (runs): {commit} (2).' in section
  assert f'- Host CPU (runs): {provenance.host_cpu()} (2).' in section
  assert '- Runs: 2, last recorded ' in section
  assert table_provenance.NOT_RECORDED not in section
