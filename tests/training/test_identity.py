"""A run's identity: the keys it reads, so new methods leave old runs alone."""

import dataclasses
import json
import os
import signal

import pytest

from rigl_jax import errors
from rigl_jax import reports
from rigl_jax.sparse import methods
from rigl_jax.sparse.methods import set as set_method
from rigl_jax.training import build
from rigl_jax.training import compiled as compiled_lib
from rigl_jax.training import config as run_config
from rigl_jax.training import identity
from rigl_jax.training import loop
from tests import fixtures


@dataclasses.dataclass(frozen=True)
class GradientWeightedSet(set_method.METHOD):
  """A method added later, with a config block of its own."""

  name = 'gset'
  display_name = 'gSET'

  @classmethod
  def config_defaults(cls):
    return {**super().config_defaults(), 'gset': {'eps': 0.1}}


@pytest.fixture
def add_method(monkeypatch):
  """Registers ``gset`` (and its config block) as a new module would."""

  def add():
    monkeypatch.setitem(methods.METHODS, 'gset', GradientWeightedSet)
    assert 'gset' in run_config.base_config()

  return add


def interrupt_at_first_eval(monkeypatch):
  """Ctrl-C during the first evaluation: the run checkpoints and stops."""
  evaluate = compiled_lib.evaluate

  def evaluate_then_ctrl_c(*args, **kwargs):
    monkeypatch.setattr(compiled_lib, 'evaluate', evaluate)
    metrics = evaluate(*args, **kwargs)
    signal.raise_signal(signal.SIGINT)
    return metrics

  monkeypatch.setattr(compiled_lib, 'evaluate', evaluate_then_ctrl_c)


def test_a_new_method_leaves_finished_and_interrupted_runs_as_they_were(
    tmp_path, mnist_dir, monkeypatch, add_method
):
  config = lambda: fixtures.tiny_mnist_config(
      mnist_dir, method='rigl', eval_every_steps=4
  )
  finished = str(tmp_path / 'finished')
  loop.train_and_evaluate(config(), finished)
  with open(os.path.join(finished, 'results.json')) as f:
    written = f.read()
  interrupted = str(tmp_path / 'interrupted')
  interrupt_at_first_eval(monkeypatch)
  with pytest.raises(errors.Preempted):
    loop.train_and_evaluate(config(), interrupted)

  add_method()
  assert 'gset' in config()  # Every config now holds the new block.
  results = loop.train_and_evaluate(config(), finished)
  with open(os.path.join(finished, 'results.json')) as f:
    assert f.read() == written  # Reported finished, not run again.
  assert results == json.loads(written)
  resumed = loop.train_and_evaluate(config(), interrupted)
  assert resumed['steps_this_run'] == 8
  assert resumed['config_changes'] == {}


def test_a_run_of_the_new_method_reads_its_block(mnist_dir, add_method):
  add_method()
  config = fixtures.tiny_mnist_config(mnist_dir, method='gset')
  mine = build.build(config).identity
  assert mine['gset.eps'] == 0.1
  rigl = build.build(fixtures.tiny_mnist_config(mnist_dir)).identity
  assert 'gset.eps' not in rigl
  assert 'snfs.momentum' not in rigl  # Another method's block.
  assert rigl['mask_update.interval'] == mine['mask_update.interval']


def _old_identity(config):
  """The identity as checkpoints stored it before: every key but the safe."""
  return {
      key: value
      for key, value in identity.flatten(config).items()
      if key not in identity.SAFE_TO_CHANGE
  }


def test_a_workdir_written_with_whole_config_identities_resumes(
    tmp_path, mnist_dir, monkeypatch
):
  """Checkpoints that stored every key (all methods' blocks) still resume."""
  config = lambda: fixtures.tiny_mnist_config(
      mnist_dir, method='static', eval_every_steps=4
  )
  monkeypatch.setattr(identity, 'of_config', _old_identity)
  interrupt_at_first_eval(monkeypatch)
  with pytest.raises(errors.Preempted):
    loop.train_and_evaluate(config(), str(tmp_path / 'run'))
  loop.train_and_evaluate(config(), str(tmp_path / 'finished'))
  monkeypatch.undo()
  stored = _old_identity(run_config.resolve(config()))
  assert 'snfs.momentum' in stored and 'snfs.momentum' not in (
      build.build(config()).identity
  )

  resumed = loop.train_and_evaluate(config(), str(tmp_path / 'run'))
  assert resumed['steps_this_run'] == 8
  assert resumed['config_changes'] == {}
  again = loop.train_and_evaluate(config(), str(tmp_path / 'finished'))
  assert again['steps_this_run'] == 12  # Its own results, not a rerun.
  # A key that does change the run is still refused.
  with pytest.raises(errors.ResumeError, match='config.seed was 0, now 1'):
    loop.train_and_evaluate(
        fixtures.tiny_mnist_config(
            mnist_dir, method='static', eval_every_steps=4, seed=1
        ),
        str(tmp_path / 'finished'),
    )


def _result(method, seed, accuracy, **overrides):
  config = run_config.set_values(
      run_config.base_config(),
      {'method': method, 'seed': seed, 'sparsity': 0.9, **overrides},
  )
  return {
      'config': json.loads(json.dumps(config.to_dict())),
      'eval': {'accuracy': accuracy},
      'flops': {'train_flops_ratio': 0.1, 'inference_flops_ratio': 0.1},
  }


def test_reports_group_runs_the_same_before_and_after_a_new_method(
    add_method,
):
  before = [
      _result(method, seed, 0.9 + seed / 100)
      for method in ('set', 'rigl', 'snfs')
      for seed in (0, 1)
  ] + [_result('rigl', 0, 0.5, **{'mask_update.drop_fraction': 0.5})]
  table = reports.table_from_results(before, 'accuracy')
  assert sorted(table) == [
      'RigL (ERK) [mask_update.drop_fraction=0.3]',
      'RigL (ERK) [mask_update.drop_fraction=0.5]',
      'SET (ERK) [mask_update.drop_fraction=0.3]',
      'SNFS (ERK) [mask_update.drop_fraction=0.3]',
  ]
  add_method()
  # Runs written after it hold the new block; they join the same cells.
  after = before + [_result('rigl', 2, 0.93), _result('set', 2, 0.93)]
  assert 'gset' in after[-1]['config'] and 'gset' not in before[0]['config']
  regrouped = reports.table_from_results(after, 'accuracy')
  assert sorted(regrouped) == sorted(table)
  for label, row in table.items():
    for sparsity, cell in row.items():
      assert regrouped[label][sparsity].metric[: len(cell.metric)] == (
          cell.metric
      )
  set_cell = regrouped['SET (ERK) [mask_update.drop_fraction=0.3]'][0.9]
  assert len(set_cell.metric) == 3
