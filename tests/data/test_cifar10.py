"""CIFAR-10: the offline JPEG zip, TFDS, device augmentation, the pipeline."""

import jax
import numpy as np
import pytest

from rigl_jax import data
from rigl_jax import errors
from rigl_jax.training import config as run_config
from rigl_jax.data import cifar10
from tests import fixtures

CLASSES = fixtures.CIFAR10_CLASSES
COUNTS = fixtures.CIFAR10_COUNTS
color = fixtures.cifar10_color
write_zip = fixtures.write_zip
fixture_entries = fixtures.cifar10_entries


@pytest.fixture(scope='module')
def cifar_dir(tmp_path_factory) -> str:
  directory = tmp_path_factory.mktemp('cifar10')
  write_zip(directory / cifar10.ARCHIVE, fixture_entries())
  return str(directory)


def config(local_dir: str, **overrides):
  cfg = run_config.base_config()
  cfg.dataset.name = 'cifar10'
  cfg.dataset.local_dir = local_dir
  cfg.batch_size = 8
  cfg.eval_batch_size = 8
  for key, value in overrides.items():
    cfg[key] = value
  return cfg


def take(iterator, n):
  return [next(iterator) for _ in range(n)]


def test_local_zip_decodes_with_labels_in_sorted_class_order(cifar_dir):
  splits = cifar10.load_local(cifar_dir)
  for split, count in COUNTS.items():
    images, labels = splits[split]['inputs'], splits[split]['labels']
    assert images.shape == (10 * count, 32, 32, 3)
    assert images.dtype == np.uint8 and labels.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(labels), [count] * 10)
    for image, label in zip(images, labels):
      # JPEG is lossy; a flat colour comes back within a few levels.
      np.testing.assert_allclose(image.mean((0, 1)), color(label), atol=3)


def test_local_matches_the_tfds_data_source(cifar_dir):
  tfds = pytest.importorskip('tensorflow_datasets')
  local = cifar10.load_local(cifar_dir)['train']
  with tfds.testing.mock_data(num_examples=5):
    remote = cifar10.load_tfds_split('train', '')
  for key in ('inputs', 'labels'):
    assert local[key].dtype == remote[key].dtype
    assert local[key].shape[1:] == remote[key].shape[1:]


def good_image():
  return fixtures.jpeg(np.zeros((32, 32, 3), np.uint8))


@pytest.mark.parametrize(
    'change,message',
    [
        (
            {'train/cat/0000.jpg': b'not a jpeg'},
            'train/cat/0000.jpg is not a 32x32 RGB JPEG',
        ),
        (
            {
                'test/dog/0001.jpg': fixtures.jpeg(
                    np.zeros((16, 32, 3), np.uint8)
                )
            },
            'test/dog/0001.jpg is not a 32x32 RGB JPEG',
        ),
        ({'readme.txt': b'hello'}, "unexpected entry 'readme.txt'"),
        ({'valid/cat/0000.jpg': good_image()}, "unexpected entry 'valid/"),
        (
            {'train/unicorn/0000.jpg': good_image()},
            'expected the same 10 class folders',
        ),
    ],
)
def test_bad_archive_contents_name_the_file(tmp_path, change, message):
  path = str(tmp_path / cifar10.ARCHIVE)
  write_zip(path, {**fixture_entries(), **change})
  with pytest.raises(errors.DataFileError, match=message) as info:
    cifar10.load_local(str(tmp_path))
  assert str(info.value).startswith(path)


def test_missing_or_corrupt_zip_names_the_file(tmp_path):
  path = str(tmp_path / cifar10.ARCHIVE)
  with pytest.raises(errors.DataFileError, match='file not found') as info:
    cifar10.load_local(str(tmp_path))
  assert path in str(info.value)
  with open(path, 'wb') as f:
    f.write(b'PK\x03\x04 truncated')
  with pytest.raises(
      errors.DataFileError, match='not a readable zip archive'
  ) as info:
    cifar10.load_local(str(tmp_path))
  assert path in str(info.value)


def preprocess(images, seed, train):
  batch = {'inputs': images, 'labels': np.zeros(len(images), np.int32)}
  return np.asarray(
      cifar10.preprocess_on_device(batch, jax.random.key(seed), train)['inputs']
  )


def test_training_augmentation_is_a_padded_crop_and_flip_per_example():
  image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)
  images = np.broadcast_to(image, (32, 32, 32, 3))
  out = preprocess(images, 5, True)
  np.testing.assert_array_equal(out, preprocess(images, 5, True))
  assert not np.array_equal(out, preprocess(images, 6, True))
  # Each output is a window of the zero-padded image, perhaps mirrored, with
  # its own offset and flip.
  padded = np.pad(image, [(4, 4), (4, 4), (0, 0)]).astype(np.float32)
  windows = {}
  for dy in range(9):
    for dx in range(9):
      window = (padded[dy : dy + 32, dx : dx + 32] - cifar10.MEAN) / cifar10.STD
      windows[(dy, dx, False)] = window
      windows[(dy, dx, True)] = window[:, ::-1]
  found = [
      next(k for k, w in windows.items() if np.allclose(w, o, atol=1e-5))
      for o in out
  ]
  assert len(set(found)) > 8
  assert {flip for _, _, flip in found} == {False, True}
  # Offsets cover the 9 positions of each axis, not a few of them.
  assert len({dy for dy, _, _ in found}) > 4
  assert len({dx for _, dx, _ in found}) > 4


def test_eval_preprocessing_only_normalizes():
  image = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), np.uint8)
  np.testing.assert_allclose(
      preprocess(image, 1, False),
      (image - cifar10.MEAN) / cifar10.STD,
      rtol=1e-6,
  )


def test_pipeline_batches_match_the_spec_and_resume(cifar_dir):
  cfg = config(cifar_dir)
  pipe = cifar10.create_pipeline(cfg, process_index=0, process_count=1)
  expected = {
      k: (v.shape, v.dtype)
      for k, v in data.batch_shapes(cfg.dataset, 8).items()
  }
  batches = take(pipe.train_batches(), 6)
  for batch in batches:
    assert {k: (v.shape, v.dtype) for k, v in batch.items()} == expected
  # 30 examples, batch 8: step 3 crosses into the second epoch.
  for x, y in zip(batches[3:], take(pipe.train_batches(3), 3)):
    for key in x:
      np.testing.assert_array_equal(x[key], y[key])


def test_eval_covers_every_test_image_once(cifar_dir):
  pipe = cifar10.create_pipeline(
      config(cifar_dir), process_index=0, process_count=1
  )
  batches = list(pipe.eval_batches())
  assert len(batches) == pipe.num_eval_batches == 3  # 20 in batches of 8
  weights = np.concatenate([b['weights'] for b in batches])
  labels = np.concatenate([b['labels'] for b in batches])
  np.testing.assert_array_equal(weights, [1] * 20 + [0] * 4)
  np.testing.assert_array_equal(np.bincount(labels[:20]), [2] * 10)
