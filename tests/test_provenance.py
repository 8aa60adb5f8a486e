"""rigl_jax.training.provenance: the commit of the code that ran."""

import os
import shutil
import subprocess
import sys

from rigl_jax.training import provenance
from tests import fixtures

_PRINT_COMMIT = (
    'from rigl_jax.training import provenance; print(provenance.git_commit())'
)


def commit_of_a_copy_without_git(tmp_path, environment) -> str:
  """git_commit() in a copy of the package outside any git checkout."""
  shutil.copytree(
      os.path.join(fixtures.REPO_ROOT, 'rigl_jax'),
      tmp_path / 'rigl_jax',
      ignore=shutil.ignore_patterns('__pycache__'),
  )
  inherited = {
      k: v
      for k, v in os.environ.items()
      if not k.startswith('GIT_') and k != provenance.COMMIT_VARIABLE
  }
  environment = {
      **inherited,
      'PYTHONPATH': str(tmp_path),
      # Keeps git from finding a checkout above the copy.
      'GIT_CEILING_DIRECTORIES': str(tmp_path.parent),
      **environment,
  }
  return subprocess.run(
      [sys.executable, '-c', _PRINT_COMMIT],
      cwd=tmp_path,
      env=environment,
      capture_output=True,
      text=True,
      timeout=120,
      check=True,
  ).stdout.strip()


def test_the_checkout_in_use_names_its_commit():
  commit = provenance.git_commit()
  head = subprocess.run(
      ['git', 'rev-parse', 'HEAD'],
      cwd=fixtures.REPO_ROOT,
      capture_output=True,
      text=True,
      check=True,
  ).stdout.strip()
  assert commit in (head, head + '+dirty')


def test_outside_a_checkout_the_commit_comes_from_the_environment(tmp_path):
  (tmp_path / 'named').mkdir()
  (tmp_path / 'unnamed').mkdir()
  named = commit_of_a_copy_without_git(
      tmp_path / 'named', {provenance.COMMIT_VARIABLE: 'abc123'}
  )
  unnamed = commit_of_a_copy_without_git(tmp_path / 'unnamed', {})
  assert (named, unnamed) == ('abc123', 'None')
