"""Tables and plots of runs, on fabricated results.json files."""

import json
import os
import statistics

import subprocess
import sys

import pytest

from rigl_jax import errors
from rigl_jax import reports
from tests import fixtures


def write_results(
    directory,
    name,
    method,
    sparsity,
    distribution,
    seed,
    accuracy,
    train_ratio,
    test_ratio,
    multiplier=1.0,
    **config,
):
  path = directory / name
  path.mkdir(parents=True)
  (path / 'results.json').write_text(
      json.dumps(
          {
              'config': {
                  'method': method,
                  'sparsity': sparsity,
                  'seed': seed,
                  'distribution': distribution,
                  'training_multiplier': multiplier,
                  **config,
              },
              'eval': {'accuracy': accuracy, 'loss': 1.0 - accuracy},
              'flops': {
                  'train_flops_ratio': train_ratio,
                  'inference_flops_ratio': test_ratio,
              },
          }
      )
  )


@pytest.fixture
def sweep(tmp_path):
  root = tmp_path / 'sweep'
  for seed, accuracy in enumerate((0.98, 0.97, 0.96)):
    write_results(
        root, f'dense{seed}', 'dense', 0.9, 'erk', seed, accuracy, 1.0, 1.0
    )
  for seed, accuracy in enumerate((0.95, 0.93)):
    write_results(
        root, f'rigl9_{seed}', 'rigl', 0.9, 'erk', seed, accuracy, 0.2, 0.1
    )
  write_results(root, 'rigl95', 'rigl', 0.95, 'erk', 0, 0.90, 0.1, 0.05)
  write_results(root, 'static9', 'static', 0.9, 'uniform', 0, 0.91, 0.1, 0.1)
  write_results(
      root, 'rigl5x', 'rigl', 0.9, 'erk', 0, 0.96, 1.0, 0.1, multiplier=5.0
  )
  # 'Static longer': a multiplier that sorts after 5x as a number only.
  write_results(
      root, 'rigl5.6x', 'rigl', 0.9, 'erk', 0, 0.97, 1.1, 0.1, multiplier=5.6
  )
  return root


def test_means_stds_and_layout(sweep, tmp_path):
  text = reports.write_report([str(sweep)], str(tmp_path / 'out'))
  lines = text.splitlines()
  assert lines[0] == (
      '| Method | Top-1 accuracy (%) @ 0.9 | FLOPs (Train) @ 0.9 '
      '| FLOPs (Test) @ 0.9 | Top-1 accuracy (%) @ 0.95 | '
      'FLOPs (Train) @ 0.95 | FLOPs (Test) @ 0.95 |'
  )
  rows = {line.split(' | ')[0][2:]: line for line in lines[2:]}
  assert list(rows) == [
      'Dense',
      'Static (uniform)',
      'RigL (ERK)',
      'RigL 5x (ERK)',
      'RigL 5.6x (ERK)',
  ]
  dense_std = statistics.stdev([98.0, 97.0, 96.0])
  # Dense has no sparsity: its numbers fill every sparsity group.
  assert rows['Dense'] == (
      f'| Dense | 97.00 ± {dense_std:.2f} (3) | 1.00x | 1.00x | '
      f'97.00 ± {dense_std:.2f} (3) | 1.00x | 1.00x |'
  )
  rigl_std = statistics.stdev([95.0, 93.0])
  assert rows['RigL (ERK)'] == (
      f'| RigL (ERK) | 94.00 ± {rigl_std:.2f} (2) | 0.20x | 0.10x | '
      '90.00 (n=1) | 0.10x | 0.05x |'
  )
  assert rows['Static (uniform)'].endswith('| - | - | - |')
  out = tmp_path / 'out'
  # The runs differ in training_multiplier: the Figure 2 plot too.
  pngs = [
      'metric_vs_sparsity.png',
      'metric_vs_train_flops.png',
      'metric_vs_training_length.png',
  ]
  assert sorted(os.listdir(out)) == pngs + ['table.md']
  for name in pngs:
    assert (out / name).read_bytes()[:4] == b'\x89PNG'
  assert text in (out / 'table.md').read_text()


def test_training_length_curves_join_a_method_s_multipliers(sweep):
  results = reports.load_results([str(sweep)])
  curves = reports._length_curves(results, 'accuracy')
  assert sorted(curves) == [0.0, 0.9, 0.95]
  rigl = curves[0.9]['RigL (ERK)']
  # Ordered by training FLOPs, each point with its multiplier and seeds.
  assert [(m, c.train_flops_ratio, c.metric) for m, c in rigl] == [
      (1.0, 0.2, (0.95, 0.93)),
      (5.0, 1.0, (0.96,)),
      (5.6, 1.1, (0.97,)),
  ]
  assert [m for m, _ in curves[0.9]['Static (uniform)']] == [1.0]
  assert [m for m, _ in curves[0.0]['Dense']] == [1.0]


def test_language_model_metric_is_bits_per_char(tmp_path):
  path = tmp_path / 'lm' / 'run'
  path.mkdir(parents=True)
  (path / 'results.json').write_text(
      json.dumps(
          {
              'config': {
                  'method': 'rigl',
                  'sparsity': 0.75,
                  'seed': 0,
                  'distribution': 'uniform',
                  'training_multiplier': 1.0,
              },
              'eval': {'accuracy': 0.5, 'loss': 1.0, 'bits_per_char': 1.4427},
              'flops': {
                  'train_flops_ratio': 0.3,
                  'inference_flops_ratio': 0.25,
              },
          }
      )
  )
  text = reports.write_report([str(tmp_path / 'lm')], str(tmp_path / 'out'))
  assert 'bits_per_char @ 0.75' in text
  # One seed: its value and n=1, no spread.
  assert '| RigL (uniform) | 1.443 (n=1) | 0.30x | 0.25x |' in text


def test_no_results_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='no results.json'):
    reports.write_report([str(tmp_path)], str(tmp_path / 'out'))


def damage(path, how):
  """A results.json cut short (as by a full disk) or without its keys."""
  if how == 'cut_short':
    path.write_text(path.read_text()[:200])
  else:
    path.write_text('{"eval": {}}')


@pytest.mark.parametrize('how', ['cut_short', 'no_keys'])
def test_an_unreadable_results_json_is_named(sweep, tmp_path, how):
  path = sweep / 'rigl9_0' / 'results.json'
  damage(path, how)
  with pytest.raises(errors.ResultsFileError) as info:
    reports.write_report([str(sweep)], str(tmp_path / 'out'))
  assert str(info.value).startswith(f'{path}: ')
  assert not (tmp_path / 'out').exists()


def test_report_script_names_an_unreadable_results_json_in_one_line(
    sweep, tmp_path
):
  path = sweep / 'rigl9_0' / 'results.json'
  damage(path, 'cut_short')
  process = subprocess.run(
      [
          sys.executable,
          'scripts/report.py',
          f'--output_dir={tmp_path / "out"}',
          str(sweep),
      ],
      cwd=fixtures.REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=300,
      check=False,
  )
  assert process.returncode == 1, process.stderr[-2000:]
  assert 'Traceback' not in process.stderr
  lines = process.stderr.strip().splitlines()
  assert lines[-1].startswith(
      f'report: ResultsFileError: {path}: not valid JSON (cut short or '
  ), process.stderr[-2000:]


def test_runs_differing_in_another_key_are_not_averaged_as_seeds(tmp_path):
  root = tmp_path / 'runs'
  for seed, lr in enumerate((0.1, 0.05)):
    write_results(
        root,
        f'rigl_{lr}',
        'rigl',
        0.9,
        'erk',
        seed,
        0.9 + lr,
        0.2,
        0.1,
        optimizer={'learning_rate': lr, 'momentum': 0.9},
    )
  table = reports.table_from_results(
      reports.load_results([str(root)]), 'accuracy'
  )
  assert sorted(table) == [
      'RigL (ERK) [optimizer.learning_rate=0.05]',
      'RigL (ERK) [optimizer.learning_rate=0.1]',
  ]
  assert all(len(cells[0.9].metric) == 1 for cells in table.values())


def test_small_dense_rows_keep_their_distribution_and_big_sparse_is_named(
    tmp_path,
):
  root = tmp_path / 'runs'
  for distribution in ('uniform', 'erk'):
    write_results(
        root,
        f'sd_{distribution}',
        'small_dense',
        0.9,
        distribution,
        0,
        0.9,
        0.1,
        0.1,
    )
  write_results(
      root,
      'big',
      'rigl',
      0.75,
      'uniform',
      0,
      0.9,
      1.0,
      1.0,
      model={'width': 1.98, 'reference_width': 1.0},
  )
  table = reports.table_from_results(
      reports.load_results([str(root)]), 'accuracy'
  )
  assert 'Small-Dense (uniform)' in table and 'Small-Dense (ERK)' in table
  assert 'Big-Sparse RigL (uniform)' in table


def test_duplicate_seeds_are_reported(tmp_path, caplog):
  root = tmp_path / 'runs'
  for name in ('a', 'b'):
    write_results(root, name, 'rigl', 0.9, 'erk', 0, 0.9, 0.2, 0.1)
  with caplog.at_level('WARNING'):
    reports.table_from_results(reports.load_results([str(root)]), 'accuracy')
  assert 'share seed(s) [0]' in caplog.text


def test_mask_structures_name_their_rows(tmp_path):
  two_four = {'mask_structure': {'kind': 'n_m', 'n': 2, 'm': 4}}
  fan_in = {'mask_structure': {'kind': 'fan_in', 'n': 2, 'm': 4}}
  for seed in (0, 1):
    write_results(tmp_path, f'u{seed}', 'rigl', 0.5, 'uniform', seed, 0.9, 1, 1)
    write_results(
        tmp_path,
        f'nm{seed}',
        'rigl',
        0.5,
        'uniform',
        seed,
        0.8,
        1,
        1,
        **two_four,
    )
    write_results(
        tmp_path, f'f{seed}', 'set', 0.5, 'erk', seed, 0.7, 1, 1, **fan_in
    )
  table = reports.table_from_results(
      reports.load_results([str(tmp_path)]), 'accuracy'
  )
  assert sorted(table) == [
      'RigL (uniform)',
      'RigL 2:4 (uniform)',
      'SET fan-in (ERK)',
  ]
  assert table['RigL 2:4 (uniform)'][0.5].metric == (0.8, 0.8)


def test_tables_end_with_their_runs_provenance(sweep, tmp_path):
  recorded = sweep / 'rigl9_0' / 'results.json'
  result = json.loads(recorded.read_text())
  result['provenance'] = {
      'git_commit': 'abcdef0123456789abcdef',
      'date': '2026-01-02T03:04:05+00:00',
      'versions': {'rigl_jax': '0.1.0', 'jax': '0.10.2', 'optax': None},
      'device_kind': 'cpu',
      'host_cpu': 'Some CPU',
  }
  recorded.write_text(json.dumps(result))
  out = tmp_path / 'out'
  reports.write_report(
      [str(sweep)], str(out), command='python scripts/report.py X'
  )
  table = (out / 'table.md').read_text()
  provenance = table[table.index('### Provenance') :].splitlines()
  assert provenance[2].startswith('- Table: `python scripts/report.py X`, ')
  # Nine runs; the fabricated ones record nothing, and say so.
  assert provenance[3].startswith('- Runs: 9, finished 2026-01-02 to ')
  assert provenance[4] == (
      '- rigl_jax commit (runs): abcdef012345 (1), not recorded (8).'
  )
  assert provenance[5] == '- Packages (runs): jax 0.10.2 (1); optax absent (1).'
  assert provenance[6] == '- Devices (runs): cpu (1), not recorded (8).'
  assert provenance[7] == '- Host CPU (runs): Some CPU (1), not recorded (8).'
