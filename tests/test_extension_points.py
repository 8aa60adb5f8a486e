"""Models and data sets from a package outside rigl_jax, named by module path.

A user keeps a model and a data set in their own package and trains them
from the command line, without editing rigl_jax.
"""

import json
import math
import os
import subprocess

import pytest

from rigl_jax import data
from rigl_jax import models
from rigl_jax.sparse import checks
from tests import fixtures

_PACKAGE = 'my_project'

# A one-layer classifier of flattened inputs.
_TOY_MODEL = """
import flax.linen as nn

from rigl_jax.models import base


class Linear(nn.Module):
  num_classes: int
  width: float = 1.0

  @nn.compact
  def __call__(self, x, train=False):
    del train
    return nn.Dense(self.num_classes)(x.reshape((x.shape[0], -1)))


MODEL = base.Model(
    name='toy_linear',
    task='classification',
    first_layer='Dense_0/kernel',
    create=Linear,
)
"""

# 64 random 4x4 images in memory, labelled by the sign of their mean.
_TOY_DATA = """
import jax
import numpy as np

from rigl_jax.data import base
from rigl_jax.data import pipeline

SHAPE = (4, 4, 1)


def _examples(seed):
  rng = np.random.default_rng(seed)
  inputs = rng.normal(size=(64,) + SHAPE).astype(np.float32)
  labels = (inputs.mean(axis=(1, 2, 3)) > 0).astype(np.int32)
  return {'inputs': inputs, 'labels': labels}


def create_pipeline(config, *, process_index, process_count):
  return pipeline.Pipeline(
      train=pipeline.in_memory(_examples(0)),
      eval=pipeline.in_memory(_examples(1)),
      global_batch_size=config.batch_size,
      eval_batch_size=config.eval_batch_size,
      seed=config.seed,
      process_index=process_index,
      process_count=process_count,
      num_workers=config.dataset.num_workers,
  )


def example_spec(dataset_config):
  del dataset_config
  return {
      'inputs': jax.ShapeDtypeStruct(SHAPE, np.float32),
      'labels': jax.ShapeDtypeStruct((), np.int32),
  }


def preprocess_on_device(batch, rng, train):
  del rng, train
  return batch


DATASET = base.Dataset(
    name='toy_signs',
    task='classification',
    num_classes=2,
    input_shape=SHAPE,
    input_dtype=np.float32,
    in_memory=True,
    create_pipeline=create_pipeline,
    example_spec=example_spec,
    preprocess_on_device=preprocess_on_device,
)
"""

# configs/mnist_lenet300.py (RigL, 90%) shrunk to 4 steps.
_OVERRIDES = {
    'model.name': f'{_PACKAGE}.toy_model',
    'dataset.name': f'{_PACKAGE}.toy_data',
    'method': 'rigl',
    'num_train_steps': 4,
    'batch_size': 16,
    'eval_batch_size': 16,
    'mask_update.interval': 2,
    'mask_update.end_step': 3,
    'lr_schedule.boundaries': (3,),
    'log_every_steps': 2,
    'eval_every_steps': 4,
    'checkpoint_every_steps': 4,
}


def _write_package(directory) -> str:
  """``my_project`` with the toy modules under ``directory``; its parent."""
  package = directory / _PACKAGE
  package.mkdir(parents=True)
  (package / '__init__.py').write_text('')
  (package / 'toy_model.py').write_text(_TOY_MODEL)
  (package / 'toy_data.py').write_text(_TOY_DATA)
  return str(directory)


def test_a_model_and_a_data_set_of_another_package_train_from_the_command_line(
    tmp_path,
):
  path = _write_package(tmp_path / 'src')
  python_path = os.pathsep.join(
      p for p in (path, os.environ.get('PYTHONPATH')) if p
  )
  workdir = str(tmp_path / 'run')
  process = fixtures.run_main(
      workdir, _OVERRIDES, env={'PYTHONPATH': python_path}
  )
  assert process.returncode == 0, process.stderr[-3000:]
  with open(os.path.join(workdir, 'results.json')) as f:
    results = json.load(f)
  assert results['steps_this_run'] == 4
  assert math.isfinite(results['eval']['loss'])
  # 90% of the 32 weights of the one kernel: 3 stay active.
  assert results['sparsity']['overall'] == pytest.approx(1 - 3 / 32)


def test_an_unknown_model_is_one_line_listing_the_models():
  with pytest.raises(checks.InvalidArgument) as info:
    models.create_model('lenet', num_classes=10, width=1.0)
  assert str(info.value) == (
      f"model.name: must be one of {sorted(models.MODELS)}, got 'lenet'"
  )


def test_an_unknown_data_set_is_one_line_listing_the_data_sets():
  with pytest.raises(checks.InvalidArgument) as info:
    data.is_in_memory('mnist2')
  assert str(info.value) == (
      f"dataset.name: must be one of {sorted(data.DATASETS)}, got 'mnist2'"
  )


@pytest.mark.parametrize('key', ['model.name', 'dataset.name'])
def test_an_unknown_name_from_the_command_line_is_one_line(tmp_path, key):
  process = subprocess.run(
      fixtures.main_command(str(tmp_path), {key: 'nope'}),
      cwd=fixtures.REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=300,
      check=False,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'},
  )
  assert process.returncode != 0
  lines = [
      line for line in process.stderr.splitlines() if f'config.{key}' in line
  ]
  assert len(lines) == 1, process.stderr[-3000:]
  assert "must be one of ['" in lines[0] and "got 'nope'" in lines[0]
  assert 'Traceback' not in process.stderr
