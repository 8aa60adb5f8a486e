"""scripts/run_progress.py: a row per run of a sweep root."""

import json
import subprocess
import sys

from tests import fixtures


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
  process = subprocess.run(
      [sys.executable, 'scripts/run_progress.py', str(tmp_path)],
      cwd=fixtures.REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=120,
      check=False,
  )
  assert process.returncode == 0, process.stderr
  (line,) = process.stderr.strip().splitlines()
  assert line.startswith(
      f'run_progress: {tmp_path / "a" / "results.json"}: cannot be read '
      '(JSONDecodeError: '
  )
  rows = process.stdout.strip().splitlines()[2:]
  assert rows == [
      '| a | results.json unreadable | 0 | nan | - |',
      '| b | yes | 0 | nan | 12: 0.5000 |',
  ]
