"""IDX files, MNIST loading and the in-memory tf.data pipeline."""

import gzip
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from rigl_jax.data import idx
from rigl_jax.data import in_memory
from rigl_jax.data import mnist


def test_idx_round_trip(tmp_path):
  array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
  for name in ('a.gz', 'b'):
    idx.write_idx(str(tmp_path / name), array)
    np.testing.assert_array_equal(idx.read_idx(str(tmp_path / name)), array)


@pytest.mark.parametrize('content,message', [
    (None, 'file not found'),
    (b'', 'bad magic number'),
    (bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]), 'expected 5 bytes'),
    (bytes([0, 0, 8, 3, 0, 0]), 'truncated header'),
    (bytes([7, 7, 7, 7]), 'bad magic number'),
])
def test_idx_errors_name_the_file(tmp_path, content, message):
  path = str(tmp_path / 'labels-idx1-ubyte')
  if content is not None:
    with open(path, 'wb') as f:
      f.write(content)
  with pytest.raises(idx.DataFileError, match=message) as info:
    idx.read_idx(path)
  assert path in str(info.value)


def test_corrupt_gzip_names_the_file(tmp_path):
  path = str(tmp_path / 'x-idx1-ubyte.gz')
  with open(path, 'wb') as f:
    f.write(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 9]) + bytes(9))[:-6])
  with pytest.raises(idx.DataFileError, match='cannot be read as gzip'):
    idx.read_idx(path)


def test_local_mnist_matches_the_tfds_element_spec(mnist_dir):
  local = mnist.load_idx_split(mnist_dir, 'train')
  with tfds.testing.mock_data(num_examples=20):
    remote = mnist.load_tfds_split('train', None)
  for key in ('image', 'label'):
    assert local[key].dtype == remote[key].dtype
    assert local[key].shape[1:] == remote[key].shape[1:]
  assert local['image'].shape == (512, 28, 28, 1)


def test_local_mnist_label_count_mismatch_names_both_files(mnist_dir,
                                                           tmp_path):
  for name in os.listdir(mnist_dir):
    os.symlink(os.path.join(mnist_dir, name), tmp_path / name)
  os.remove(tmp_path / 'train-labels-idx1-ubyte.gz')
  idx.write_idx(str(tmp_path / 'train-labels-idx1-ubyte.gz'),
                np.zeros(7, np.uint8))
  with pytest.raises(idx.DataFileError, match='expected 512 labels'):
    mnist.load_idx_split(str(tmp_path), 'train')


def make_pipeline(n=40, batch=8, eval_n=19, seed=3, process_index=0,
                  process_count=1):

  def preprocess(examples, seed, train):
    del train
    noise = tf.random.stateless_uniform([tf.shape(examples['x'])[0]], seed)
    return {'inputs': tf.cast(examples['x'], tf.float32) + noise,
            'labels': examples['y']}

  return in_memory.InMemoryPipeline(
      train={'x': np.arange(n), 'y': np.arange(n) % 3},
      eval={'x': np.arange(eval_n), 'y': np.arange(eval_n) % 3},
      preprocess=preprocess, global_batch_size=batch, eval_batch_size=batch,
      seed=seed, num_classes=3, task='classification',
      process_index=process_index, process_count=process_count)


def take(iterator, n):
  return [next(iterator) for _ in range(n)]


def test_each_epoch_is_a_permutation_and_epochs_differ():
  batches = take(make_pipeline().train_batches(), 10)
  seen = [np.floor(b['inputs']).astype(int) for b in batches]
  first, second = np.concatenate(seen[:5]), np.concatenate(seen[5:])
  assert sorted(first) == list(range(40)) == sorted(second)
  assert not np.array_equal(first, second)


def test_stream_is_a_function_of_seed_and_step():
  a = take(make_pipeline().train_batches(), 7)
  b = take(make_pipeline().train_batches(start_step=4), 3)
  for x, y in zip(a[4:], b):
    np.testing.assert_array_equal(x['inputs'], y['inputs'])
  other = take(make_pipeline(seed=4).train_batches(), 1)[0]
  assert not np.array_equal(other['inputs'], a[0]['inputs'])


def test_batches_crossing_an_epoch_boundary():
  # 36 examples, batch 8: step 4 holds the last 4 of epoch 0, first 4 of 1.
  batches = take(make_pipeline(n=36).train_batches(), 9)
  ids = np.concatenate([np.floor(b['inputs']).astype(int) for b in batches])
  assert sorted(ids[:36]) == list(range(36))
  assert sorted(ids[36:72]) == list(range(36))


def test_process_slices_make_up_the_global_batch():
  whole = take(make_pipeline().train_batches(), 3)
  parts = [take(make_pipeline(process_index=i, process_count=2)
                .train_batches(), 3) for i in range(2)]
  for step in range(3):
    ids = np.concatenate([np.floor(p[step]['inputs']) for p in parts])
    np.testing.assert_array_equal(ids, np.floor(whole[step]['inputs']))


def test_eval_covers_every_example_once():
  pipeline = make_pipeline()
  batches = list(pipeline.eval_batches())
  assert len(batches) == pipeline.num_eval_batches == 3
  ids = np.concatenate([b['inputs'][b['weights'] > 0] for b in batches])
  assert sorted(ids.astype(int)) == list(range(19))
  assert all(b['inputs'].shape == (8,) for b in batches)


def test_batch_size_errors():
  with pytest.raises(ValueError, match='batch_size=9 must be a positive '
                     'multiple of the number of processes'):
    make_pipeline(batch=9, process_count=2)
  with pytest.raises(ValueError, match='exceeds the 40 training examples'):
    make_pipeline(batch=48)


def test_mnist_batches_match_the_dataset_spec(mnist_dir):
  from rigl_jax import dataset_specs  # pylint: disable=g-import-not-at-top
  from tests import fixtures  # pylint: disable=g-import-not-at-top
  config = fixtures.tiny_mnist_config(mnist_dir)
  spec = dataset_specs.get_spec(config.dataset)
  pipeline = mnist.create_pipeline(config, process_index=0, process_count=1)
  batch = next(pipeline.train_batches())
  assert batch['inputs'].shape[1:] == spec.input_shape
  assert batch['inputs'].dtype == spec.input_dtype
  assert pipeline.num_classes == spec.num_classes
  assert pipeline.task == spec.task
