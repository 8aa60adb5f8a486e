"""Every command line the project ships: bad input is one line, no traceback.

Each case runs one command line (``python -m rigl_jax.main``, ``python -m
rigl_jax.export``, ``scripts/*.py``, ``scripts/*.sh``) with input wrong in
one way: a missing file, a typo in a flag's value or a config key, a
missing flag. As ``rigl_jax.main`` does, the last line of stderr names the
key or file and the cause, every line before it is the log, the exit
status is 1 (2 for a bad flag, argument or config file), and there is no
traceback. Every case fails before any data loading, tracing or training.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from tests import fixtures

# (command line, exit status, the last line's start, fragments it holds);
# {tmp} is the test's temporary directory, {results} a results.json in it.
_CASES = {
    # The reference: rigl_jax.main itself.
    'main_config_key_typo': (
        '-m rigl_jax.main --config=configs/mnist_lenet300.py '
        '--config.sparsty=0.9 --workdir={tmp}/run',
        2,
        'rigl_jax: bad flag or config: unknown config key sparsty',
        ['"sparsity"'],
    ),
    'main_missing_config_file': (
        '-m rigl_jax.main --config={tmp}/no_such.py --workdir={tmp}/run',
        2,
        'rigl_jax: bad config file: ',
        ['{tmp}/no_such.py', 'No such file'],
    ),
    'main_unexpected_argument': (
        '-m rigl_jax.main --config=configs/mnist_lenet300.py '
        '--workdir={tmp}/run extra',
        2,
        'rigl_jax: Unexpected arguments: ',
        ['extra'],
    ),
    'costs_config_key_typo': (
        'scripts/costs.py --config=configs/mnist_lenet300.py '
        '--config.sparsty=0.9',
        2,
        'costs: bad flag or config: unknown config key sparsty',
        ['"sparsity"'],
    ),
    'costs_missing_config_file': (
        'scripts/costs.py --config={tmp}/no_such.py',
        2,
        'costs: bad config file: ',
        ['{tmp}/no_such.py', 'No such file'],
    ),
    'costs_without_config': (
        'scripts/costs.py',
        2,
        'costs: bad flag or config: flag --config=None',
        [],
    ),
    'costs_bad_config_value': (
        'scripts/costs.py --config=configs/mnist_lenet300.py '
        '--config.method=rigll',
        1,
        'costs: ConfigError: config.method: ',
        ["'rigll'"],
    ),
    'count_tied_growth_without_flags': (
        'scripts/count_tied_growth.py',
        2,
        'count_tied_growth: bad flag or config: flag --config=None',
        [],
    ),
    'count_tied_growth_without_mnist_dir': (
        'scripts/count_tied_growth.py --config=configs/mnist_lenet300.py',
        2,
        'count_tied_growth: ',
        ['--config.dataset.local_dir'],
    ),
    'count_tied_growth_missing_mnist_dir': (
        'scripts/count_tied_growth.py --config=configs/mnist_lenet300.py '
        '--config.dataset.local_dir={tmp}/no_such',
        1,
        'count_tied_growth: DataFileError: {tmp}/no_such/',
        ['not found'],
    ),
    'report_missing_directory': (
        'scripts/report.py --output_dir={tmp}/report {tmp}/no_such',
        1,
        'report: ResultsFileError: {tmp}/no_such: ',
        ['No such file'],
    ),
    'report_unknown_metric': (
        'scripts/report.py --output_dir={tmp}/report --metric=acc {results}',
        2,
        "report: --metric: a run has no eval metric 'acc'",
        ["'accuracy'"],
    ),
    'report_without_sweep_directory': (
        'scripts/report.py --output_dir={tmp}/report',
        2,
        'report: usage: ',
        [],
    ),
    'sweep_missing_experiment_file': (
        'scripts/sweep.py {tmp}/no_such.py --root={tmp}/sweeps',
        1,
        'sweep.py: FileNotFoundError: {tmp}/no_such.py: ',
        ['not found'],
    ),
    'sweep_set_without_value': (
        'scripts/sweep.py experiments/mnist_lenet300.py --root={tmp}/sweeps '
        '--set=novalue',
        2,
        'sweep.py: --set=novalue: not key=value',
        [],
    ),
    'sweep_only_matching_no_run': (
        'scripts/sweep.py experiments/mnist_lenet300.py --root={tmp}/sweeps '
        '--only=seed=9 --run',
        2,
        'sweep.py: --only=seed=9 keeps none of the ',
        ['seed is one of 0, 1, 2'],
    ),
    'sweep_unknown_backend': (
        'scripts/sweep.py experiments/mnist_lenet300.py --root={tmp}/sweeps '
        '--backend=slurmm',
        2,
        'sweep.py: bad flag or config: flag --backend=slurmm',
        [],
    ),
    'flops_table_without_config': (
        'scripts/flops_table.py',
        2,
        'flops_table: bad flag or config: flag --config=None',
        [],
    ),
    'flops_table_unknown_method': (
        'scripts/flops_table.py --config=configs/mnist_lenet300.py '
        '--methods=rigl,rigll',
        2,
        "flops_table: bad flag or config: flag --methods=['rigl', 'rigll']",
        ["'rigll' is not one of"],
    ),
    'flops_table_sparsity_not_a_number': (
        'scripts/flops_table.py --config=configs/mnist_lenet300.py '
        '--sparsities=0.9,O.95',
        2,
        'flops_table: bad flag or config: flag --sparsities=',
        ["'O.95' is not a number"],
    ),
    'flops_table_big_sparse_without_width': (
        'scripts/flops_table.py --config=configs/mnist_lenet300.py '
        '--big_sparse=0.75',
        2,
        'flops_table: bad flag or config: flag --big_sparse=',
        ["'0.75' is not sparsity:width"],
    ),
    'flops_table_missing_results': (
        'scripts/flops_table.py --config=configs/mnist_lenet300.py '
        '--results={tmp}/no_such/results.json',
        1,
        'flops_table: ResultsFileError: {tmp}/no_such/results.json: ',
        ['No such file'],
    ),
    'flops_table_unknown_metric': (
        'scripts/flops_table.py --config=configs/mnist_lenet300.py '
        '--results={results} --metric=acc',
        2,
        "flops_table: --metric: a run has no eval metric 'acc'",
        [],
    ),
    'export_missing_workdir': (
        '-m rigl_jax.export --workdir={tmp}/no_such --out={tmp}/out',
        1,
        'rigl_jax.export: WorkdirError: {tmp}/no_such ',
        [],
    ),
    'export_without_out': (
        '-m rigl_jax.export --workdir={tmp}',
        2,
        'rigl_jax.export: bad flag or config: flag --out=None',
        [],
    ),
    'prepare_tfds_without_dataset': (
        'scripts/prepare_tfds.py',
        2,
        'prepare_tfds: bad flag or config: flag --dataset=None',
        [],
    ),
    'sparse_landscape_missing_config_file': (
        'scripts/sparse_landscape.py --config={tmp}/no_such.py '
        '--root={tmp}/runs --output_dir={tmp}/out',
        2,
        'sparse_landscape: bad config file: ',
        ['{tmp}/no_such.py'],
    ),
    'sparse_landscape_without_root': (
        'scripts/sparse_landscape.py --config=experiments/landscape_mnist.py '
        '--output_dir={tmp}/out',
        2,
        'sparse_landscape: bad flag or config: flag --root=None',
        [],
    ),
    'run_progress_missing_root': (
        'scripts/run_progress.py {tmp}/no_such',
        1,
        'run_progress: {tmp}/no_such: no such directory',
        [],
    ),
    'run_progress_without_root': (
        'scripts/run_progress.py',
        2,
        'run_progress: usage: ',
        [],
    ),
    'cifar10_archive_missing_zip': (
        'scripts/cifar10_archive.py pack {tmp}/no_such.zip {tmp}/c.tar.xz',
        1,
        'cifar10_archive: pack {tmp}/no_such.zip: FileNotFoundError: ',
        [],
    ),
    'cifar10_archive_not_a_tar': (
        'scripts/cifar10_archive.py unpack {results} {tmp}/c.zip',
        1,
        'cifar10_archive: unpack {results}: ReadError: ',
        [],
    ),
    'cifar10_archive_unknown_action': (
        'scripts/cifar10_archive.py repack {tmp}/a {tmp}/b',
        2,
        'cifar10_archive: usage: ',
        [],
    ),
    'gpu_check_unknown_argument': (
        'scripts/gpu_check.sh --smok',
        2,
        'gpu_check.sh: unknown argument --smok',
        [],
    ),
    'gpu_check_option_without_value': (
        'scripts/gpu_check.sh --smoke --out',
        2,
        'gpu_check.sh: --out needs a value',
        [],
    ),
    'gpu_check_missing_archive': (
        'scripts/gpu_check.sh --cifar_archive {tmp}/no_such.tar',
        1,
        'gpu_check.sh: --cifar_archive {tmp}/no_such.tar: no such file',
        [],
    ),
    'gpu_wrn22_runs_without_arguments': (
        'scripts/gpu_wrn22_runs.sh',
        2,
        'gpu_wrn22_runs.sh: usage: ',
        [],
    ),
    'gpu_wrn22_runs_seconds_not_a_number': (
        'scripts/gpu_wrn22_runs.sh 1h {tmp}/root {tmp}/out',
        2,
        "gpu_wrn22_runs.sh: SECONDS must be a number of seconds, got '1h'",
        [],
    ),
    'gpu_wrn22_runs_missing_part': (
        'scripts/gpu_wrn22_runs.sh 60 {tmp}/root {tmp}/out {tmp}/runs.aa',
        1,
        'gpu_wrn22_runs.sh: {tmp}/runs.aa: no such file',
        [],
    ),
}
# Imports TensorFlow (tens of seconds on a small machine).
_SLOW_CASES = {
    'prepare_tfds_unknown_dataset': (
        'scripts/prepare_tfds.py --dataset=mnistt --data_dir={tmp}/tfds',
        2,
        'prepare_tfds: --dataset=mnistt: TFDS has no such data set',
        [],
    ),
}

# absl's log lines (I1206 12:00:00.000 ...): the only lines before the error.
_LOG_LINE = re.compile(r'^[IWE]\d{4} \d\d:\d\d:\d\d')


def _fill(text: str, tmp_path) -> str:
  return text.format(tmp=tmp_path, results=tmp_path / 'run' / 'results.json')


def _write_results_json(tmp_path) -> None:
  """A finished run's results.json, with accuracy as its only metric."""
  path = tmp_path / 'run' / 'results.json'
  path.parent.mkdir()
  path.write_text(
      json.dumps(
          {
              'config': {
                  'method': 'rigl',
                  'sparsity': 0.9,
                  'distribution': 'erk',
                  'training_multiplier': 1.0,
              },
              'eval': {'accuracy': 0.98},
              'flops': {'train_flops_ratio': 0.1, 'inference_flops_ratio': 0.1},
          }
      )
  )


def run_command(command: str, tmp_path) -> subprocess.CompletedProcess:
  """Runs ``command``: a script or ``-m module``, then its arguments."""
  _write_results_json(tmp_path)
  args = _fill(command, tmp_path).split()
  program = ['bash'] if args[0].endswith('.sh') else [sys.executable]
  return subprocess.run(
      program + args,
      cwd=fixtures.REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=300,
      check=False,
      env={**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '3'},
  )


def error_line(process: subprocess.CompletedProcess) -> str:
  """The last line of stderr, after checking that the rest is the log."""
  assert 'Traceback' not in process.stderr, process.stderr[-3000:]
  lines = process.stderr.strip().splitlines()
  assert lines, process.stdout[-2000:]
  *log, last = lines
  assert all(_LOG_LINE.match(line) for line in log), process.stderr[-3000:]
  return last


@pytest.mark.parametrize(
    'case',
    list(_CASES)
    + [pytest.param(name, marks=pytest.mark.slow) for name in _SLOW_CASES],
)
def test_bad_input_is_one_line_naming_it(case, tmp_path):
  command, status, start, fragments = {**_CASES, **_SLOW_CASES}[case]
  process = run_command(command, tmp_path)
  last = error_line(process)
  assert process.returncode == status, process.stderr[-3000:]
  assert last.startswith(_fill(start, tmp_path)), last
  for fragment in fragments:
    assert _fill(fragment, tmp_path) in last, last
  assert not process.stdout.strip(), process.stdout[-2000:]


def test_a_run_shortened_by_num_train_steps_names_the_multiplier(tmp_path):
  """WRN-22-2's step anchors lie beyond 300 steps: the line says how to
  scale the whole schedule instead, and that multiplier gives 300 steps."""
  from rigl_jax.sparse import methods  # pylint: disable=g-import-not-at-top
  from rigl_jax.training import config as config_lib  # pylint: disable=g-import-not-at-top

  process = run_command(
      '-m rigl_jax.main --config=configs/cifar10_wrn22_2.py '
      '--config.num_train_steps=300 --workdir={tmp}/run300',
      tmp_path,
  )
  last = error_line(process)
  assert process.returncode == 1, process.stderr[-3000:]
  assert last.startswith(
      'rigl_jax: ConfigError: config.mask_update.end_step: 75000 is beyond '
      'num_train_steps (300); for a run of 300 steps, scale the whole '
      'schedule of configs/cifar10_wrn22_2.py (97656 steps) with '
      '--config.training_multiplier='
  ), last
  multiplier = float(re.search(r'training_multiplier=([\d.e-]+)', last)[1])
  config = config_lib.load(
      os.path.join(fixtures.REPO_ROOT, 'configs', 'cifar10_wrn22_2.py')
  )
  config.training_multiplier = multiplier
  run = config_lib.resolve(config)
  assert run.num_train_steps == 300
  methods.from_config(run)  # Every step anchor now lies within the run.
