"""Byte-level language-model data: windows, Tiny Shakespeare, WikiText-103."""

import importlib.resources
import importlib.util
import os
import sys

import numpy as np
import pytest

from rigl_jax import data
from rigl_jax.data import specs as dataset_specs
from rigl_jax import errors
from rigl_jax.training import config as run_config
from rigl_jax.data import language_model
from rigl_jax.data import tfds_source
from rigl_jax.data import tiny_shakespeare
from rigl_jax.data import wikitext103
from tests import fixtures

SHARED_SHAKESPEARE = os.path.join(fixtures.SHARED_DATA, 'tinyshakespeare')
# 400 bytes, not ASCII only, with a couple of Windows line ends.
TEXT = ''.join(
    f'Line {i}: to be or not to be, café.\r\n'
    if i % 5 == 0
    else f'Line {i}: that is the question.\n'
    for i in range(12)
)


@pytest.fixture
def tfds_can_build(monkeypatch):
  """Lets TFDS 4.9.10 build datasets without ``importlib_resources``.

  It imports that package but declares it only for Python < 3.9
  (tensorflow/datasets#11212); the standard library's module has the one
  attribute it uses.
  """
  if importlib.util.find_spec('importlib_resources') is None:
    importlib.import_module('importlib.resources.abc')
    monkeypatch.setitem(sys.modules, 'importlib_resources', importlib.resources)


def config(name: str, local_dir: str = '', **dataset):
  cfg = run_config.base_config()
  cfg.dataset.name = name
  cfg.dataset.local_dir = local_dir
  cfg.dataset.sequence_length = 16
  cfg.batch_size = 4
  cfg.eval_batch_size = 4
  for key, value in dataset.items():
    cfg.dataset[key] = value
  return cfg


def take(iterator, n):
  return [next(iterator) for _ in range(n)]


def rebuild_text(batches) -> bytes:
  """The bytes eval batches cover: each window's first input, then its
  weighted labels."""
  parts = []
  for batch in batches:
    batch = {
        k: np.asarray(v)
        for k, v in language_model.preprocess_on_device(
            batch, None, False
        ).items()
    }
    for inputs, labels, weights in zip(
        batch['inputs'], batch['labels'], batch['weights']
    ):
      if weights.any():
        parts.append(
            bytes([inputs[0]]) + labels[weights > 0].astype(np.uint8).tobytes()
        )
  return b''.join(parts)


def check_spec(pipeline, cfg, batch_size):
  """The pipeline's batches have the documented shapes, and on the device
  they become inputs and labels shifted by one byte."""
  batch = next(pipeline.train_batches())
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {
      k: (v.shape, v.dtype)
      for k, v in data.batch_shapes(cfg.dataset, batch_size).items()
  }
  spec = dataset_specs.get_spec(cfg.dataset)
  model_batch = {
      k: np.asarray(v)
      for k, v in language_model.preprocess_on_device(batch, None, True).items()
  }
  assert model_batch['inputs'].shape[1:] == spec.input_shape
  assert model_batch['inputs'].dtype == spec.input_dtype
  assert (
      model_batch['labels'].shape
      == model_batch['weights'].shape
      == (model_batch['inputs'].shape)
  )
  np.testing.assert_array_equal(model_batch['weights'], 1)
  np.testing.assert_array_equal(
      model_batch['inputs'][:, 1:], model_batch['labels'][:, :-1]
  )
  return batch


def test_windows_are_non_overlapping_and_the_eval_tail_is_padded():
  data = bytes(range(23))
  train = language_model.windows(data, 4, keep_tail=False)
  np.testing.assert_array_equal(train['window'], np.arange(20).reshape(4, 5))
  np.testing.assert_array_equal(train['length'], [5] * 4)
  evaluation = language_model.windows(data, 4, keep_tail=True)
  np.testing.assert_array_equal(evaluation['window'][-1], [20, 21, 22, 0, 0])
  np.testing.assert_array_equal(evaluation['length'], [5, 5, 5, 5, 3])
  # A single leftover byte has nothing to predict.
  assert (
      len(language_model.windows(data[:21], 4, keep_tail=True)['window']) == 4
  )


def test_preprocess_shifts_labels_and_weights_out_the_padding():
  examples = language_model.windows(
      bytes([200, 1, 2, 3, 4, 5, 6, 7]), 4, keep_tail=True
  )
  out = language_model.preprocess_on_device(
      {**examples, 'weights': np.ones(len(examples['length']), np.float32)},
      None,
      False,
  )
  np.testing.assert_array_equal(out['inputs'], [[200, 1, 2, 3], [5, 6, 7, 0]])
  np.testing.assert_array_equal(out['labels'], [[1, 2, 3, 4], [6, 7, 0, 0]])
  np.testing.assert_array_equal(out['weights'], [[1, 1, 1, 1], [1, 1, 0, 0]])


def test_local_split_follows_the_tfds_builder_on_characters():
  splits = tiny_shakespeare.split_like_tfds('é' * 40)
  assert [len(splits[s]) for s in ('train', 'validation', 'test')] == [36, 2, 2]
  splits = tiny_shakespeare.split_like_tfds('x' * 1_115_394)
  assert [len(splits[s]) for s in ('train', 'validation', 'test')] == [
      1_003_854,
      55_770,
      55_770,
  ]


@pytest.mark.skipif(
    not os.path.exists(SHARED_SHAKESPEARE),
    reason='needs ../shared/data/tinyshakespeare',
)
def test_local_splits_equal_the_tfds_build_of_the_real_file(
    tmp_path, tfds_can_build
):
  pytest.importorskip('tensorflow')  # TFDS prepares with TensorFlow.
  local = tiny_shakespeare.load_local_splits(SHARED_SHAKESPEARE)
  # input.txt in the manual dir matches TFDS's registered checksum, so TFDS
  # builds from it offline with its own split code.
  tfds_source.prepare('tiny_shakespeare', str(tmp_path), SHARED_SHAKESPEARE)
  for split in ('train', 'validation', 'test'):
    assert tiny_shakespeare.load_tfds_split(split, str(tmp_path)) == (
        local[split]
    )


@pytest.fixture
def text_dir(tmp_path) -> str:
  (tmp_path / 'input.txt').write_bytes(TEXT.encode('utf-8'))
  return str(tmp_path)


def test_tiny_shakespeare_pipeline_from_a_local_file(text_dir):
  cfg = config('tiny_shakespeare', text_dir)
  pipeline = tiny_shakespeare.create_pipeline(
      cfg, process_index=0, process_count=1
  )
  check_spec(pipeline, cfg, 4)
  splits = tiny_shakespeare.load_local_splits(text_dir)
  assert pipeline.train.num_examples == len(splits['train']) // 17
  # Every validation byte is a window start or a weighted label, once.
  batches = list(pipeline.eval_batches())
  assert len(batches) == pipeline.num_eval_batches
  assert len(splits['validation']) % 17 >= 2  # The tail is kept.
  assert rebuild_text(batches) == splits['validation']
  # The stream from step s is the tail of the stream from 0.
  stream = take(pipeline.train_batches(), 8)
  for x, y in zip(stream[5:], take(pipeline.train_batches(5), 3)):
    np.testing.assert_array_equal(x['window'], y['window'])
  assert not np.array_equal(stream[0]['window'], stream[1]['window'])


def test_tiny_shakespeare_through_tfds():
  tfds = pytest.importorskip('tensorflow_datasets')
  cfg = config('tiny_shakespeare', sequence_length=8)
  with tfds.testing.mock_data(num_examples=10):
    pipeline = tiny_shakespeare.create_pipeline(
        cfg, process_index=0, process_count=1
    )
  check_spec(pipeline, cfg, 4)


@pytest.mark.parametrize(
    'content,message',
    [
        (None, 'file not found'),
        (b'\xff\xfe not utf-8', 'cannot be read as UTF-8'),
        (b'', 'the file is empty'),
    ],
)
def test_bad_text_files_are_named(tmp_path, content, message):
  path = tmp_path / 'input.txt'
  if content is not None:
    path.write_bytes(content)
  with pytest.raises(errors.DataFileError, match=message) as info:
    tiny_shakespeare.load_local_splits(str(tmp_path))
  assert str(info.value).startswith(str(path))


@pytest.mark.parametrize(
    'length,message',
    [
        (1000, r'sequence_length=1000: the \d+ training bytes'),
        (0, 'sequence_length: must be positive'),
    ],
)
def test_bad_sequence_lengths_name_the_config_key(text_dir, length, message):
  with pytest.raises(errors.ConfigError, match=f'config.dataset.{message}'):
    tiny_shakespeare.create_pipeline(
        config('tiny_shakespeare', text_dir, sequence_length=length),
        process_index=0,
        process_count=1,
    )


WIKI = fixtures.WIKITEXT
write_wikitext = fixtures.write_wikitext


def test_wikitext_builds_offline_from_the_zip(tmp_path, tfds_can_build):
  pytest.importorskip('tensorflow')  # TFDS prepares with TensorFlow.
  write_wikitext(tmp_path)
  tfds_source.prepare('wikitext103', str(tmp_path / 'tfds'), str(tmp_path))
  cfg = config('wikitext103', tfds_data_dir=str(tmp_path / 'tfds'))
  for split, text in WIKI.items():
    assert wikitext103.read_tfds_split(split, str(tmp_path / 'tfds')) == (
        text.encode('utf-8')
    )
  # The pipeline reads the same bytes through TFDS as from the archive.
  through_tfds = wikitext103.create_pipeline(
      cfg, process_index=0, process_count=1
  )
  assert rebuild_text(through_tfds.eval_batches()) == (
      WIKI['validation'].encode()
  )


def test_wikitext_pipeline_reads_the_archive(tmp_path):
  write_wikitext(tmp_path)
  cfg = config('wikitext103', str(tmp_path))
  pipeline = wikitext103.create_pipeline(cfg, process_index=0, process_count=1)
  check_spec(pipeline, cfg, 4)
  train_bytes = len(WIKI['train'].encode('utf-8'))
  assert pipeline.train.num_examples == train_bytes // 17
  assert rebuild_text(pipeline.eval_batches()) == WIKI['validation'].encode()
  stream = take(pipeline.train_batches(), 5)
  for x, y in zip(stream[2:], take(pipeline.train_batches(2), 3)):
    np.testing.assert_array_equal(x['window'], y['window'])


@pytest.mark.parametrize(
    'members,message',
    [
        (None, 'file not found'),
        (
            {
                'wikitext-103-raw/wiki.train.raw': b'x\n',
                'wikitext-103-raw/wiki.test.raw': b'x\n',
            },
            r"lacks \['wikitext-103-raw/wiki.valid.raw'\]",
        ),
        (b'PK\x03\x04 truncated', 'not a readable zip archive'),
    ],
)
def test_bad_wikitext_archives_are_named(tmp_path, members, message):
  path = os.path.join(tmp_path, wikitext103.ARCHIVE)
  if isinstance(members, bytes):
    with open(path, 'wb') as f:
      f.write(members)
  elif members:
    write_wikitext(tmp_path, members)
  with pytest.raises(errors.DataFileError, match=message) as info:
    wikitext103.load_splits(config('wikitext103', str(tmp_path)))
  assert str(info.value).startswith(path)
