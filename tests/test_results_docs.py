"""docs/results stays true: README numbers come from the tables, and every
table says which code made it."""

import pathlib
import re

import pytest

from rigl_jax import table_provenance

RESULTS = pathlib.Path(__file__).resolve().parents[1] / 'docs' / 'results'
# 'mean ± std' as the tables print it (a README may break the line at ±).
MEAN_AND_STD = re.compile(r'(-?\d+\.\d+)\s+±\s+(\d+\.\d+)')
# The first line scripts/report.py writes under a table's title.
REPORT_TABLE = 'mean ± sample std over seeds'


# Tables that cannot carry their runs' provenance yet.
EXEMPT = {
    # Runs still training, logged before a session's log named its code;
    # scripts/run_progress.py's next table carries the provenance.
    'cifar10_wrn22_2/progress.md',
}


def tables() -> list[pathlib.Path]:
  """Every table in docs/results: report.py's and the landscape study's."""
  return sorted(
      path
      for path in RESULTS.rglob('*.md')
      if path.name != 'README.md'
      and str(path.relative_to(RESULTS)) not in EXEMPT
  )


def report_tables() -> list[pathlib.Path]:
  return [
      path
      for path in tables()
      if REPORT_TABLE in path.read_text(encoding='utf-8')
  ]


def readmes() -> list[pathlib.Path]:
  return sorted(RESULTS.rglob('README.md'))


def test_there_are_tables_and_readmes_to_check():
  assert len(report_tables()) >= 8
  assert len(readmes()) >= 5


@pytest.mark.parametrize(
    'table', tables(), ids=lambda p: str(p.relative_to(RESULTS))
)
def test_every_table_names_the_code_that_made_it(table):
  text = table.read_text(encoding='utf-8')
  name = str(table.relative_to(RESULTS))
  assert (
      table_provenance.HEADING in text
  ), f'{name} has no provenance section: regenerate it with scripts/report.py'
  provenance = text[text.index(table_provenance.HEADING) :]
  commits = next(
      line for line in provenance.splitlines() if 'rigl_jax commit' in line
  )
  assert (
      table_provenance.NOT_RECORDED not in commits
  ), f'{name}: some runs predate provenance: {commits}'
  assert (
      '+dirty' not in commits
  ), f'{name}: some runs ran on uncommitted code: {commits}'


@pytest.mark.parametrize(
    'readme', readmes(), ids=lambda p: str(p.relative_to(RESULTS))
)
def test_readme_numbers_are_in_its_tables(readme):
  # The index quotes every folder's tables; a folder's README its own.
  folder = RESULTS if readme.parent == RESULTS else readme.parent
  tables = ' '.join(
      path.read_text(encoding='utf-8')
      for path in folder.rglob('*.md')
      if path.name != 'README.md'
  )
  in_tables = set(MEAN_AND_STD.findall(tables))
  quoted = MEAN_AND_STD.findall(readme.read_text(encoding='utf-8'))
  missing = [f'{m} ± {s}' for m, s in quoted if (m, s) not in in_tables]
  assert not missing, (
      f'{readme.relative_to(RESULTS)} quotes numbers no table under '
      f'{folder.relative_to(RESULTS.parent)} holds: {missing}'
  )


def test_exempt_tables_exist():
  missing = sorted(name for name in EXEMPT if not (RESULTS / name).is_file())
  assert not missing, f'no such tables (remove them from EXEMPT): {missing}'
