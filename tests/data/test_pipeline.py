"""IDX files, MNIST loading and the (seed, step)-indexed Grain pipeline."""

import gzip
import os

import numpy as np
import pytest

from rigl_jax import data
from rigl_jax.data import specs as dataset_specs
from rigl_jax.data import idx
from rigl_jax.data import mnist
from rigl_jax.data import pipeline
from tests import fixtures


def test_idx_round_trip(tmp_path):
  array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
  for name in ('a.gz', 'b'):
    fixtures.write_idx(str(tmp_path / name), array)
    np.testing.assert_array_equal(idx.read_idx(str(tmp_path / name)), array)


@pytest.mark.parametrize(
    'content,message',
    [
        (None, 'file not found'),
        (b'', 'bad magic number'),
        (bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2]), 'expected 5 bytes'),
        (bytes([0, 0, 8, 3, 0, 0]), 'truncated header'),
        (bytes([7, 7, 7, 7]), 'bad magic number'),
    ],
)
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


def mnist_images_gz(mnist_dir):
  """A copy of MNIST's test images: the real file where present."""
  real = os.path.join(
      fixtures.SHARED_DATA, 'mnist', 't10k-images-idx3-ubyte.gz'
  )
  source = (
      real
      if os.path.exists(real)
      else os.path.join(mnist_dir, 't10k-images-idx3-ubyte.gz')
  )
  with open(source, 'rb') as f:
    return f.read()


def overwrite_100_random_bytes(data):
  damaged = bytearray(data)
  damaged[1000:1100] = np.random.default_rng(0).bytes(100)
  return bytes(damaged)


@pytest.mark.parametrize(
    'damage',
    [
        overwrite_100_random_bytes,  # zlib.error
        lambda data: data[: len(data) // 2],  # EOFError
        lambda data: b'<html>Not Found</html>',  # Not gzip.
    ],
    ids=['corrupt', 'cut_in_the_middle', 'not_gzip'],
)
def test_a_damaged_gzip_is_one_error_naming_the_file(
    mnist_dir, tmp_path, damage
):
  path = str(tmp_path / 't10k-images-idx3-ubyte.gz')
  with open(path, 'wb') as f:
    f.write(damage(mnist_images_gz(mnist_dir)))
  with pytest.raises(idx.DataFileError) as info:
    idx.read_idx(path)
  message = str(info.value)
  assert message.startswith(f'{path}: cannot be read as gzip (corrupt or ')
  assert len(message.splitlines()) == 1


def test_local_mnist_matches_the_tfds_data_source(mnist_dir):
  tfds = pytest.importorskip('tensorflow_datasets')
  local = mnist.load_idx_split(mnist_dir, 'train')
  with tfds.testing.mock_data(num_examples=20):
    remote = mnist.load_tfds_split('train', '')
  for key in ('inputs', 'labels'):
    assert local[key].dtype == remote[key].dtype
    assert local[key].shape[1:] == remote[key].shape[1:]
  assert local['inputs'].shape == (512, 28, 28, 1)
  assert len(remote['labels']) == 20


def test_unprepared_tfds_data_set_is_a_clear_error(tmp_path):
  pytest.importorskip('tensorflow_datasets')
  with pytest.raises(
      mnist.tfds_source.errors.DataFileError,
      match="TFDS 'mnist' split 'train' is not prepared",
  ) as e:
    mnist.load_tfds_split('train', str(tmp_path))
  assert str(e.value).startswith(str(tmp_path))
  assert 'scripts/prepare_tfds.py --dataset=mnist' in str(e.value)


def test_local_mnist_label_count_mismatch_names_both_files(mnist_dir, tmp_path):
  for name in os.listdir(mnist_dir):
    os.symlink(os.path.join(mnist_dir, name), tmp_path / name)
  os.remove(tmp_path / 'train-labels-idx1-ubyte.gz')
  fixtures.write_idx(
      str(tmp_path / 'train-labels-idx1-ubyte.gz'), np.zeros(7, np.uint8)
  )
  with pytest.raises(idx.DataFileError, match='expected 512 labels'):
    mnist.load_idx_split(str(tmp_path), 'train')


def make_pipeline(
    n=40,
    batch=8,
    eval_n=19,
    seed=3,
    process_index=0,
    process_count=1,
    num_workers=0,
):
  """Examples whose input is their own index."""
  train = {'inputs': np.arange(n), 'labels': np.arange(n) % 3}
  evaluation = {'inputs': np.arange(eval_n), 'labels': np.arange(eval_n) % 3}
  return pipeline.Pipeline(
      train=pipeline.in_memory(train),
      eval=pipeline.in_memory(evaluation),
      global_batch_size=batch,
      eval_batch_size=batch,
      seed=seed,
      process_index=process_index,
      process_count=process_count,
      num_workers=num_workers,
  )


def take(iterator, n):
  return [next(iterator) for _ in range(n)]


def ids(batches):
  return np.concatenate([b['inputs'] for b in batches])


def test_each_epoch_is_a_permutation_and_epochs_differ():
  batches = take(make_pipeline().train_batches(), 10)
  first, second = ids(batches[:5]), ids(batches[5:])
  assert sorted(first) == list(range(40)) == sorted(second)
  assert not np.array_equal(first, second)
  for batch in batches:
    np.testing.assert_array_equal(batch['labels'], batch['inputs'] % 3)
    np.testing.assert_array_equal(batch['weights'], 1)


def test_stream_is_a_function_of_seed_and_step():
  a = take(make_pipeline().train_batches(), 7)
  b = take(make_pipeline().train_batches(start_step=4), 3)
  for x, y in zip(a[4:], b):
    np.testing.assert_array_equal(x['inputs'], y['inputs'])
  np.testing.assert_array_equal(
      make_pipeline().train_batch(5)['inputs'], a[5]['inputs']
  )
  other = take(make_pipeline(seed=4).train_batches(), 1)[0]
  assert not np.array_equal(other['inputs'], a[0]['inputs'])


def test_batches_crossing_an_epoch_boundary():
  # 36 examples, batch 8: step 4 holds the last 4 of epoch 0, first 4 of 1.
  batches = take(make_pipeline(n=36).train_batches(), 9)
  all_ids = ids(batches)
  assert sorted(all_ids[:36]) == list(range(36))
  assert sorted(all_ids[36:72]) == list(range(36))


def test_process_slices_make_up_the_global_batch():
  whole = take(make_pipeline().train_batches(), 3)
  parts = [
      take(make_pipeline(process_index=i, process_count=2).train_batches(), 3)
      for i in range(2)
  ]
  for step in range(3):
    np.testing.assert_array_equal(
        np.concatenate([p[step]['inputs'] for p in parts]),
        whole[step]['inputs'],
    )


def test_worker_processes_give_the_same_stream():
  in_process = take(make_pipeline().train_batches(3), 6)
  with_workers = take(make_pipeline(num_workers=2).train_batches(3), 6)
  for x, y in zip(in_process, with_workers):
    np.testing.assert_array_equal(x['inputs'], y['inputs'])


def test_eval_covers_every_example_once():
  pipe = make_pipeline()
  batches = list(pipe.eval_batches())
  assert len(batches) == pipe.num_eval_batches == 3
  valid = np.concatenate([b['inputs'][b['weights'] > 0] for b in batches])
  assert sorted(valid) == list(range(19))
  assert all(b['inputs'].shape == (8,) for b in batches)
  halves = [
      list(make_pipeline(process_index=i, process_count=2).eval_batches())
      for i in range(2)
  ]
  for b, x, y in zip(batches, *halves):
    np.testing.assert_array_equal(
        np.concatenate([x['weights'], y['weights']]), b['weights']
    )


def test_batch_size_errors():
  with pytest.raises(
      ValueError,
      match='batch_size=9 must be a positive '
      'multiple of the number of processes',
  ):
    make_pipeline(batch=9, process_count=2)
  with pytest.raises(ValueError, match='exceeds the 40 training examples'):
    make_pipeline(batch=48)


def test_table_of_indices_is_the_stream():
  pipe = make_pipeline(n=36)
  table = pipe.train_indices(np.arange(3, 20))
  for row, step in zip(table, range(3, 20)):
    np.testing.assert_array_equal(row, pipe.train_batch(step)['inputs'])


def test_mnist_batches_match_the_dataset_spec(mnist_dir):
  config = fixtures.tiny_mnist_config(mnist_dir)
  spec = dataset_specs.get_spec(config.dataset)
  pipe = mnist.create_pipeline(config, process_index=0, process_count=1)
  batch = next(pipe.train_batches())
  expected = data.batch_shapes(config.dataset, config.batch_size)
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {
      k: (v.shape, v.dtype) for k, v in expected.items()
  }
  model_batch = mnist.preprocess_on_device(batch, None, True)
  assert model_batch['inputs'].dtype == spec.input_dtype
  assert model_batch['inputs'].shape[1:] == spec.input_shape
  assert 0.0 <= float(model_batch['inputs'].min())
  assert float(model_batch['inputs'].max()) <= 1.0
