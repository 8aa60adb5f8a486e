"""The data sets each module declares, and how runs name them."""

import dataclasses
import re

import jax
import numpy as np
import pytest

from rigl_jax import data
from rigl_jax.data import specs as dataset_specs
from rigl_jax.sparse import checks
from rigl_jax.training import config as run_config
from tests import fixtures

_NAMES = ['cifar10', 'imagenet2012', 'mnist', 'tiny_shakespeare', 'wikitext103']


def _dataset_config(name: str):
  config = run_config.base_config().dataset
  config.name = name
  config.image_size = 64
  config.sequence_length = 16
  return config


def test_every_data_set_is_registered_under_its_own_name():
  assert list(data.DATASETS) == _NAMES == list(dataset_specs.names())
  assert all(name == d.name for name, d in data.DATASETS.items())


@pytest.mark.parametrize('name', _NAMES)
def test_the_spec_is_what_device_preprocessing_makes_of_a_batch(name):
  config = _dataset_config(name)
  spec = dataset_specs.get_spec(config)
  batch = data.batch_shapes(config, 2)
  for train in (True, False):
    model_batch = jax.eval_shape(
        lambda b, t=train: data.device_preprocess(name)(
            b, jax.random.key(0), t
        ),
        batch,
    )
    assert model_batch['inputs'].shape == (2,) + spec.input_shape
    assert model_batch['inputs'].dtype == spec.input_dtype
    labels = () if spec.task == 'classification' else spec.input_shape
    assert model_batch['labels'].shape == (2,) + labels


def test_each_data_set_reads_its_own_config_keys():
  assert data.config_keys('mnist') == {}
  assert data.config_keys('imagenet2012') == {'image_size': 224}
  assert data.config_keys('wikitext103') == {'sequence_length': 512}
  assert data.config_keys('tiny_shakespeare') == {'sequence_length': 512}
  assert data.all_config_keys() == {'image_size': 224, 'sequence_length': 512}


def test_data_sets_that_disagree_on_a_default_are_a_type_error():
  other = dataclasses.replace(
      data.DATASETS['wikitext103'], config_keys={'sequence_length': 256}
  )
  with pytest.raises(TypeError, match='config.dataset.sequence_length'):
    data._merge_config_keys(  # pylint: disable=protected-access
        [data.DATASETS['tiny_shakespeare'], other]
    )


def test_an_unknown_data_set_is_one_line_listing_the_data_sets():
  config = run_config.base_config()
  config.dataset.name = 'mnist2'
  with pytest.raises(checks.InvalidArgument) as info:
    dataset_specs.get_spec(config.dataset)
  assert str(info.value) == (
      f"dataset.name: must be one of {_NAMES}, got 'mnist2'"
  )
  with pytest.raises(run_config.ConfigError) as info:
    with run_config.as_config_errors():
      data.is_in_memory('mnist2')
  assert str(info.value).startswith('config.dataset.name: must be one of [')


def test_an_unknown_module_path_is_one_line_naming_it():
  with pytest.raises(checks.InvalidArgument, match='dataset.name') as info:
    data.get('no_such_package.toy')
  assert "cannot import 'no_such_package.toy'" in str(info.value)
  assert '\n' not in str(info.value)


def _write_module(directory, monkeypatch, source: str) -> str:
  """A module of ``source`` on sys.path, in a package; its dotted name."""
  package = directory / re.sub(r'\W', '_', f'toy_data_{directory.name}')
  package.mkdir()
  (package / '__init__.py').write_text('')
  (package / 'toy.py').write_text(source)
  monkeypatch.syspath_prepend(str(directory))
  return f'{package.name}.toy'


def test_a_module_without_a_data_set_is_named(tmp_path, monkeypatch):
  name = _write_module(tmp_path, monkeypatch, 'X = 1\n')
  with pytest.raises(
      checks.InvalidArgument, match=f"module '{name}' declares no DATASET"
  ):
    data.get(name)


def test_a_malformed_declaration_is_a_type_error_naming_its_module(
    tmp_path, monkeypatch
):
  name = _write_module(
      tmp_path,
      monkeypatch,
      'import dataclasses\n'
      'from rigl_jax.data import mnist\n'
      "DATASET = dataclasses.replace(mnist.DATASET, config_keys={'name': 1})\n",
  )
  with pytest.raises(
      TypeError, match=rf"{name}.DATASET: mnist: config_keys \['name'\]"
  ):
    data.get(name)


def test_importing_the_data_sets_needs_no_tensorflow():
  process = fixtures.run_without(
      ('tensorflow', 'tensorflow_datasets'),
      'from rigl_jax import data\nprint(sorted(data.DATASETS))',
  )
  assert process.returncode == 0, process.stderr[-2000:]
  assert process.stdout.strip() == str(_NAMES)


def test_random_batches_have_the_pipeline_shapes():
  config = _dataset_config('wikitext103')
  batch = data.random_batch(config, 3, 256, np.random.default_rng(0))
  shapes = data.batch_shapes(config, 3)
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {
      k: (v.shape, v.dtype) for k, v in shapes.items()
  }
  np.testing.assert_array_equal(batch['length'], 17)
