"""ImageNet: host crops with Pillow, the pipeline, and the TFDS data source."""

import numpy as np
import pytest

from rigl_jax import data
from rigl_jax.training import config as run_config
from rigl_jax.data import imagenet
from tests import fixtures

NUM_EXAMPLES = 10  # Per split.


def config(**overrides):
  cfg = run_config.base_config()
  cfg.dataset.name = 'imagenet2012'
  cfg.dataset.image_size = 32
  cfg.batch_size = 4
  cfg.eval_batch_size = 4
  return run_config.set_values(cfg, overrides)


def random_source(n=NUM_EXAMPLES, seed=0):
  return fixtures.imagenet_records(n, seed)


def create(process_index=0, process_count=1, **overrides):
  return imagenet.make_pipeline(
      random_source(),
      random_source(seed=1),
      config=config(**overrides),
      process_index=process_index,
      process_count=process_count,
  )


def take(iterator, n):
  return [next(iterator) for _ in range(n)]


def assert_batches_equal(xs, ys):
  assert len(xs) == len(ys)
  for x, y in zip(xs, ys):
    assert x.keys() == y.keys()
    for key in x:
      np.testing.assert_array_equal(x[key], y[key])


def test_batches_match_the_dataset_spec():
  expected = {
      k: (v.shape, v.dtype)
      for k, v in data.batch_shapes(config().dataset, 4).items()
  }
  for batch in take(create().train_batches(), 3):
    assert {k: (v.shape, v.dtype) for k, v in batch.items()} == expected


def test_resumed_stream_is_the_tail_of_the_full_stream():
  pipeline = create()
  stream = take(pipeline.train_batches(), 7)  # Crosses two epochs.
  for start in (1, 2, 5):
    assert_batches_equal(
        stream[start:], take(pipeline.train_batches(start), 7 - start)
    )


def test_crops_do_not_depend_on_the_number_of_processes_or_workers():
  whole = take(create().train_batches(), 3)
  parts = [
      take(create(process_index=i, process_count=2).train_batches(), 3)
      for i in range(2)
  ]
  for step in range(3):
    for key in whole[step]:
      np.testing.assert_array_equal(
          np.concatenate([p[step][key] for p in parts]), whole[step][key]
      )
  with_workers = take(create(**{'dataset.num_workers': 2}).train_batches(), 3)
  assert_batches_equal(whole, with_workers)


def test_stream_is_a_function_of_the_seed():
  first = take(create().train_batches(), 2)
  other_seed = next(create(seed=1).train_batches())
  assert not np.array_equal(other_seed['inputs'], first[0]['inputs'])


def test_eval_covers_every_example_once_in_order():
  source = random_source(seed=1)
  batches = list(create().eval_batches())
  assert len(batches) == 3
  weights = np.concatenate([b['weights'] for b in batches])
  np.testing.assert_array_equal(weights, [1] * NUM_EXAMPLES + [0] * 2)
  labels = np.concatenate([b['labels'] for b in batches])
  np.testing.assert_array_equal(
      labels[:NUM_EXAMPLES], [r['label'] for r in source]
  )
  assert_batches_equal(batches, list(create().eval_batches()))


def ramps(height, width):
  """Smooth ramps (which JPEG keeps) that tell where each pixel came from."""
  rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
  return np.stack([5 * rows, 3 * cols, np.full_like(rows, 128)], -1).astype(
      np.uint8
  )


def test_eval_image_is_the_central_seven_eighths_of_the_short_side():
  image = ramps(40, 64)
  out = imagenet.eval_image(fixtures.jpeg(image, 100), 35)
  assert out.shape == (35, 35, 3) and out.dtype == np.uint8
  errors = {
      (y, x): np.abs(out.astype(float) - image[y : y + 35, x : x + 35]).mean()
      for y in range(6)
      for x in range(30)
  }
  # 40x64: the crop is the central 35x35 square, rows 3-37, cols 15-49.
  assert min(errors, key=errors.get) == (3, 15)
  assert errors[(3, 15)] < 2  # JPEG errs by a level or two.


def test_downscaled_decoding_keeps_the_crop():
  # A 512x768 image cut to 64 px: decoded at 1/8 scale, same window.
  image = ramps(512, 768) // 4 * 2
  jpeg = fixtures.jpeg(image, 100)
  out = imagenet.crop_and_resize(jpeg, lambda h, w: (64, 128, 256, 256), 64)
  expected = image[64:320, 128:384].reshape(64, 4, 64, 4, 3).mean((1, 3))
  assert np.abs(out - expected).mean() < 3


def test_train_crops_cover_the_documented_area_and_aspect_ranges():
  rng = np.random.default_rng(0)
  boxes = [imagenet.sample_crop(rng, 300, 400) for _ in range(2000)]
  areas = np.array([h * w for _, _, h, w in boxes]) / (300 * 400)
  ratios = np.array([w / h for _, _, h, w in boxes])
  assert all(
      0 <= top and 0 <= left and top + h <= 300 and left + w <= 400
      for top, left, h, w in boxes
  )
  assert 0.07 < areas.min() < 0.12 and areas.max() > 0.9
  assert ratios.min() > 0.7 and ratios.max() < 1.4
  assert len(set(boxes)) > 1900


def test_train_image_is_random_per_position_and_deterministic():
  jpeg = fixtures.jpeg(
      np.random.default_rng(0).integers(0, 256, (48, 64, 3)), 100
  )
  crops = [imagenet.train_image(jpeg, 0, position, 24) for position in range(4)]
  assert all(c.shape == (24, 24, 3) and c.dtype == np.uint8 for c in crops)
  np.testing.assert_array_equal(crops[0], imagenet.train_image(jpeg, 0, 0, 24))
  assert len({c.tobytes() for c in crops}) == 4


def test_pipeline_through_the_tfds_data_source():
  tfds = pytest.importorskip('tensorflow_datasets')
  pytest.importorskip('tensorflow')  # TFDS's mock encodes JPEGs with it.
  with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
    pipeline = imagenet.create_pipeline(
        config(), process_index=0, process_count=1
    )
    batch = next(pipeline.train_batches())
    eval_batches = list(pipeline.eval_batches())
  assert batch['inputs'].shape == (4, 32, 32, 3)
  assert len(eval_batches) == 3
