"""ImageNet: preprocessing, and the streaming pipeline on TFDS mock data."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from rigl_jax import dataset_specs
from rigl_jax import run_config
from rigl_jax.data import imagenet

NUM_EXAMPLES = 10  # Per split, in the mock.


def config(**overrides):
  cfg = run_config.base_config()
  cfg.dataset.name = 'imagenet2012'
  cfg.dataset.image_size = 32
  cfg.batch_size = 4
  cfg.eval_batch_size = 4
  for key, value in overrides.items():
    cfg[key] = value
  return cfg


def create(process_index=0, process_count=1, **overrides):
  return imagenet.create_pipeline(config(**overrides),
                                  process_index=process_index,
                                  process_count=process_count)


@pytest.fixture(autouse=True)
def mock_imagenet():
  # Random JPEGs of random sizes; every split reads the same examples.
  with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
    yield


def take(iterator, n):
  return [next(iterator) for _ in range(n)]


def assert_batches_equal(xs, ys):
  assert len(xs) == len(ys)
  for x, y in zip(xs, ys):
    assert x.keys() == y.keys()
    for key in x:
      np.testing.assert_array_equal(x[key], y[key])


def normalized(pixels):
  return (np.asarray(pixels, np.float32) - imagenet.MEAN) / imagenet.STD


def test_batches_match_the_dataset_spec():
  cfg = config()
  spec = dataset_specs.get_spec(cfg.dataset)
  pipeline = create()
  assert (pipeline.num_classes, pipeline.task) == (spec.num_classes,
                                                   spec.task)
  assert pipeline.steps_per_epoch == NUM_EXAMPLES // 4  # Whole batches.
  for batch in take(pipeline.train_batches(), 3):
    assert batch['inputs'].shape == (4,) + spec.input_shape
    assert batch['inputs'].dtype == spec.input_dtype
    assert batch['labels'].shape == batch['weights'].shape == (4,)
    assert np.all((batch['labels'] >= 0) & (batch['labels'] < 1000))
    np.testing.assert_array_equal(batch['weights'], 1)


def test_resumed_stream_is_the_tail_of_the_full_stream():
  pipeline = create()
  stream = take(pipeline.train_batches(), 7)  # Epochs of 2 steps.
  for start in (1, 2, 5):
    assert_batches_equal(stream[start:],
                         take(pipeline.train_batches(start), 7 - start))


def test_stream_is_a_function_of_the_seed_and_epochs_differ():
  first = take(create().train_batches(), 4)
  assert_batches_equal(first, take(create().train_batches(), 4))
  other_seed = next(create(seed=1).train_batches())
  assert not np.array_equal(other_seed['inputs'], first[0]['inputs'])
  # Each epoch is a fresh shuffle (and fresh crops) of the same examples.
  epochs = [np.concatenate([b['labels'] for b in first[i:i + 2]])
            for i in (0, 2)]
  assert not np.array_equal(epochs[0], epochs[1])


def test_processes_read_their_share_of_each_global_batch():
  pipeline = create(process_index=1, process_count=2)
  batch = next(pipeline.train_batches())
  assert batch['inputs'].shape == (2, 32, 32, 3)
  assert len(list(pipeline.eval_batches())) == pipeline.num_eval_batches


def test_eval_covers_every_example_once_in_order():
  pipeline = create()
  batches = list(pipeline.eval_batches())
  assert len(batches) == pipeline.num_eval_batches == 3
  weights = np.concatenate([b['weights'] for b in batches])
  np.testing.assert_array_equal(weights, [1] * NUM_EXAMPLES + [0] * 2)
  expected = [int(e['label']) for e in tfds.builder('imagenet2012')
              .as_dataset(split='validation', shuffle_files=False)]
  labels = np.concatenate([b['labels'] for b in batches])
  np.testing.assert_array_equal(labels[:NUM_EXAMPLES], expected)
  assert_batches_equal(batches, list(pipeline.eval_batches()))


def test_eval_image_is_the_central_seven_eighths_of_the_short_side():
  # Smooth ramps (which JPEG keeps) tell where each pixel came from.
  rows, cols = np.meshgrid(np.arange(40), np.arange(64), indexing='ij')
  image = np.stack([5 * rows, 3 * cols, np.full_like(rows, 128)], -1)
  jpeg = tf.io.encode_jpeg(image.astype(np.uint8), quality=100,
                           chroma_downsampling=False)
  out = imagenet.eval_image(jpeg, 35).numpy()
  assert out.shape == (35, 35, 3) and out.dtype == np.float32
  pixels = out * imagenet.STD + imagenet.MEAN
  errors = {(y, x): np.abs(pixels - image[y:y + 35, x:x + 35]).mean()
            for y in range(6) for x in range(30)}
  # 40x64: the crop is the central 35x35 square, rows 3-37, cols 15-49.
  assert min(errors, key=errors.get) == (3, 15)
  assert errors[(3, 15)] < 2  # JPEG errs by a level or two.


def test_train_image_is_random_per_seed_and_deterministic():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (48, 64, 3), np.uint8)
  jpeg = tf.io.encode_jpeg(image, quality=100)
  crops = [imagenet.train_image(jpeg, tf.constant([s, 0], tf.int64), 24)
           .numpy() for s in range(4)]
  assert all(c.shape == (24, 24, 3) and c.dtype == np.float32 for c in crops)
  again = imagenet.train_image(jpeg, tf.constant([0, 0], tf.int64), 24)
  np.testing.assert_array_equal(crops[0], again)
  assert len({c.tobytes() for c in crops}) == 4
