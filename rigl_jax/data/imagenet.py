"""ImageNet-2012 through ``tfds.data_source``: random access, decoded on the host.

TFDS's ``imagenet2012`` needs a manual download: put
``ILSVRC2012_img_train.tar`` and ``ILSVRC2012_img_val.tar`` in the TFDS
manual dir and prepare the ArrayRecord files once (about 150 GB under
``config.dataset.tfds_data_dir``; see docs/install.md). Training reads them
without TensorFlow.

The stream follows ``rigl_jax.data.pipeline``: a fresh global permutation of
the 1,281,167 training images every epoch, each process loading its slice
of every global batch, so resuming at step s needs nothing but s. Loading
an image decodes its JPEG with Pillow, at a reduced DCT scale where the
crop allows, and cuts the standard ResNet/MobileNet crops:

- training: an Inception-style random crop of 8-100% of the area and an
  aspect ratio in [3/4, 4/3], resized (bicubic) to the model's size; the
  crop is drawn from a generator seeded by (seed, stream position), so it
  does not depend on the number of processes or workers;
- evaluation: the central square of 87.5% of the short side, resized.

Images travel as uint8; on the device, training images are flipped at
random and all are normalized per channel.

Decoding is the expensive part: set ``config.dataset.num_workers`` to the
host's spare cores (Grain worker processes).
"""

import io
import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from PIL import Image

from rigl_jax.data import base
from rigl_jax.data import image_ops
from rigl_jax.data import pipeline
from rigl_jax.data import tfds_source

NUM_CLASSES = 1000
# Per-channel mean and standard deviation of ImageNet images (0-255).
MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], np.float32) * 255
# Inception-style random-resized crop.
AREA_RANGE = (0.08, 1.0)
ASPECT_RATIO_RANGE = (3 / 4, 4 / 3)
CROP_ATTEMPTS = 10
# Eval: a centred square of this fraction of the short side, resized.
EVAL_CROP_FRACTION = 0.875
TRAIN_SPLIT = 'train'
EVAL_SPLIT = 'validation'

Box = tuple[int, int, int, int]  # top, left, height, width


def sample_crop(rng: np.random.Generator, height: int, width: int) -> Box:
  """A random crop of ``AREA_RANGE`` of the area and ``ASPECT_RATIO_RANGE``.

  As TensorFlow's ``sample_distorted_bounding_box`` with no boxes: up to
  ``CROP_ATTEMPTS`` draws, then the whole image.
  """
  area = height * width
  for _ in range(CROP_ATTEMPTS):
    target_area = rng.uniform(*AREA_RANGE) * area
    aspect_ratio = rng.uniform(*ASPECT_RATIO_RANGE)  # width / height
    crop_height = int(round(math.sqrt(target_area / aspect_ratio)))
    crop_width = int(round(crop_height * aspect_ratio))
    if 0 < crop_height <= height and 0 < crop_width <= width:
      top = int(rng.integers(0, height - crop_height + 1))
      left = int(rng.integers(0, width - crop_width + 1))
      return top, left, crop_height, crop_width
  return 0, 0, height, width


def central_crop(height: int, width: int) -> Box:
  """The centred square of ``EVAL_CROP_FRACTION`` of the short side."""
  size = max(1, int(round(EVAL_CROP_FRACTION * min(height, width))))
  return (height - size + 1) // 2, (width - size + 1) // 2, size, size


def crop_and_resize(jpeg: bytes, box_fn, image_size: int) -> np.ndarray:
  """uint8 [image_size, image_size, 3] of the box ``box_fn(height, width)``.

  The JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that still
  gives the box at least ``image_size`` pixels per side.
  """
  with Image.open(io.BytesIO(jpeg)) as image:
    width, height = image.size
    top, left, crop_height, crop_width = box_fn(height, width)
    image.draft(
        'RGB',
        (
            max(1, width * image_size // crop_width),
            max(1, height * image_size // crop_height),
        ),
    )
    scale_x, scale_y = image.size[0] / width, image.size[1] / height
    box = (
        left * scale_x,
        top * scale_y,
        (left + crop_width) * scale_x,
        (top + crop_height) * scale_y,
    )
    image = image.convert('RGB')
    resized = image.resize(
        (image_size, image_size), Image.Resampling.BICUBIC, box=box
    )
  return np.asarray(resized, np.uint8)


def train_image(
    jpeg: bytes, seed: int, position: int, image_size: int
) -> np.ndarray:
  """The random-resized crop of stream position ``position``."""
  rng = np.random.default_rng([seed, position])
  return crop_and_resize(jpeg, lambda h, w: sample_crop(rng, h, w), image_size)


def eval_image(jpeg: bytes, image_size: int) -> np.ndarray:
  return crop_and_resize(jpeg, central_crop, image_size)


class _Loader:
  """Reads records and cuts their crops (picklable for Grain's workers)."""

  def __init__(
      self, source: Sequence[Any], image_size: int, seed: int, train: bool
  ):
    self._source = source
    self._image_size = image_size
    self._seed = seed
    self._train = train

  def __call__(
      self, indices: np.ndarray, positions: np.ndarray
  ) -> pipeline.Batch:
    images, labels = [], []
    for index, position in zip(indices, positions):
      record = self._source[int(index)]
      if self._train:
        images.append(
            train_image(
                record['image'], self._seed, int(position), self._image_size
            )
        )
      else:
        images.append(eval_image(record['image'], self._image_size))
      labels.append(record['label'])
    return {'inputs': np.stack(images), 'labels': np.asarray(labels, np.int32)}


def example_spec(dataset_config: Any) -> dict[str, jax.ShapeDtypeStruct]:
  """The features of one example in a batch."""
  size = dataset_config.image_size
  return {
      'inputs': jax.ShapeDtypeStruct((size, size, 3), np.uint8),
      'labels': jax.ShapeDtypeStruct((), np.int32),
  }


def preprocess_on_device(
    batch: dict[str, jax.Array], rng: jax.Array, train: bool
) -> dict[str, jax.Array]:
  """Flips training images at random; normalizes all to float32."""
  images = batch['inputs']
  if train:
    images = image_ops.random_flip_left_right(rng, images)
  return {**batch, 'inputs': image_ops.normalize(images, MEAN, STD)}


def make_pipeline(
    train_source: Sequence[Any],
    eval_source: Sequence[Any],
    *,
    config: Any,
    process_index: int,
    process_count: int,
) -> pipeline.Pipeline:
  """The pipeline over sources of {'image': JPEG bytes, 'label': int}."""
  image_size = config.dataset.image_size
  return pipeline.Pipeline(
      train=pipeline.Split(
          len(train_source),
          _Loader(train_source, image_size, config.seed, train=True),
      ),
      eval=pipeline.Split(
          len(eval_source),
          _Loader(eval_source, image_size, config.seed, train=False),
      ),
      global_batch_size=config.batch_size,
      eval_batch_size=config.eval_batch_size,
      seed=config.seed,
      process_index=process_index,
      process_count=process_count,
      num_workers=config.dataset.num_workers,
  )


def create_pipeline(
    config: Any, *, process_index: int, process_count: int
) -> pipeline.Pipeline:
  """The ImageNet pipeline of a run config."""
  train, evaluation = (
      tfds_source.data_source(
          'imagenet2012',
          split,
          config.dataset.tfds_data_dir,
          skip_decoding=('image',),
      )
      for split in (TRAIN_SPLIT, EVAL_SPLIT)
  )
  return make_pipeline(
      train,
      evaluation,
      config=config,
      process_index=process_index,
      process_count=process_count,
  )


DATASET = base.Dataset(
    name='imagenet2012',
    task='classification',
    num_classes=NUM_CLASSES,
    input_shape=lambda dataset_config: (
        dataset_config.image_size,
        dataset_config.image_size,
        3,
    ),
    input_dtype=np.float32,
    # Streamed from disk and decoded on the host.
    in_memory=False,
    create_pipeline=create_pipeline,
    example_spec=example_spec,
    preprocess_on_device=preprocess_on_device,
    # The training crop's and the eval image's side, in pixels.
    config_keys={'image_size': 224},
)
