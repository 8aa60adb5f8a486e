"""ImageNet-2012 through TFDS: streaming, deterministic and resumable.

TFDS's ``imagenet2012`` needs a manual download: put
``ILSVRC2012_img_train.tar`` and ``ILSVRC2012_img_val.tar`` in
``config.dataset.local_dir`` (the TFDS manual dir) and the first run builds
the records (about 150 GB) under ``config.dataset.tfds_data_dir``; in
multi-host runs, build once before launching.

The data do not fit in memory, so images are decoded as they stream. Each
process reads its own equal share of 'train' (``tfds.split_for_jax_process``,
dropping fewer than ``process_count`` examples). Epoch e reads the share in
a file order and through a shuffle buffer both seeded from (seed, e), cut to
whole batches: ``steps_per_epoch = share // local batch`` (the few examples
left over are dropped, different ones each epoch). The stream is therefore a
pure function of (seed, step): step s is batch ``s % steps_per_epoch`` of
epoch ``s // steps_per_epoch``, and ``train_batches(s)`` re-reads and
shuffles, without decoding, the records of that epoch before it. Resuming
late in an epoch thus costs up to one epoch of reading (about
140 GB / process_count at worst, typically minutes), never decoding. Each
epoch is its own tf.data pipeline, so every epoch starts with a short pause
while its shuffle buffer fills.
Augmentation draws from stateless seeds of (seed, process, epoch, position).

Evaluation reads the whole 'validation' split once, split over processes,
padded with weight-0 examples to ``num_eval_batches`` batches everywhere.
"""

from collections.abc import Iterator
import math
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from rigl_jax.data import in_memory

NUM_CLASSES = 1000
# Per-channel mean and standard deviation of ImageNet images (0-255).
MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], np.float32) * 255
# Inception-style random-resized crop.
AREA_RANGE = (0.08, 1.0)
ASPECT_RATIO_RANGE = (3 / 4, 4 / 3)
# Eval: a centred square of this fraction of the short side, resized.
EVAL_CROP_FRACTION = 0.875
# Serialized training records held for shuffling: about 110 kB each, so
# about 1.8 GB of host memory per process.
SHUFFLE_BUFFER = 16_384
TRAIN_SPLIT = 'train'
EVAL_SPLIT = 'validation'
# Keep JPEG bytes so that crops decode only the pixels they keep.
_DECODERS = {'image': tfds.decode.SkipDecoding()}


def _resize(image: tf.Tensor, image_size: int) -> tf.Tensor:
  # Bicubic, as in the Flax and TPU ImageNet examples.
  return tf.image.resize(image, [image_size, image_size], method='bicubic')


def _normalize(image: tf.Tensor) -> tf.Tensor:
  return (image - MEAN) / STD


def train_image(jpeg: tf.Tensor, seed: tf.Tensor,
                image_size: int) -> tf.Tensor:
  """Random-resized crop and random flip of a JPEG, normalized float32."""
  crop_seed, flip_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, 2))
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
      tf.io.extract_jpeg_shape(jpeg),
      bounding_boxes=tf.zeros([0, 0, 4]),  # None: the whole image counts.
      seed=crop_seed, min_object_covered=0.0,
      aspect_ratio_range=ASPECT_RATIO_RANGE, area_range=AREA_RANGE,
      max_attempts=10, use_image_if_no_bounding_boxes=True)
  offset_y, offset_x, _ = tf.unstack(begin)
  height, width, _ = tf.unstack(size)
  image = tf.io.decode_and_crop_jpeg(
      jpeg, tf.stack([offset_y, offset_x, height, width]), channels=3)
  image = tf.image.stateless_random_flip_left_right(image, flip_seed)
  return _normalize(_resize(image, image_size))


def eval_image(jpeg: tf.Tensor, image_size: int) -> tf.Tensor:
  """Central crop of 87.5% of the short side, resized, normalized float32."""
  shape = tf.io.extract_jpeg_shape(jpeg)
  height, width = shape[0], shape[1]
  crop = tf.cast(tf.round(EVAL_CROP_FRACTION * tf.cast(
      tf.minimum(height, width), tf.float32)), tf.int32)
  crop = tf.maximum(crop, 1)
  window = tf.stack([(height - crop + 1) // 2, (width - crop + 1) // 2,
                     crop, crop])
  image = tf.io.decode_and_crop_jpeg(jpeg, window, channels=3)
  return _normalize(_resize(image, image_size))


def _with_options(dataset: tf.data.Dataset) -> tf.data.Dataset:
  options = tf.data.Options()
  options.deterministic = True
  return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


class ImageNetPipeline:
  """Streaming ImageNet batches; see the module docstring."""

  def __init__(self, *, builder: tfds.core.DatasetBuilder, image_size: int,
               global_batch_size: int, eval_batch_size: int, seed: int,
               process_index: int = 0, process_count: int = 1):
    """Creates the pipeline.

    Args:
      builder: a prepared (or mocked) ``imagenet2012`` builder.
      image_size: height and width of the model's input images.
      global_batch_size: training batch over all processes.
      eval_batch_size: evaluation batch over all processes.
      seed: seeds the file order, the shuffling and the augmentation.
      process_index: this process's index.
      process_count: the number of processes.
    """
    for name, size in (('batch_size', global_batch_size),
                       ('eval_batch_size', eval_batch_size)):
      if size <= 0 or size % process_count:
        raise ValueError(f'{name}={size} must be a positive multiple of the '
                         f'number of processes ({process_count})')
    self.num_classes = NUM_CLASSES
    self.task = 'classification'
    self.global_batch_size = global_batch_size
    self.eval_batch_size = eval_batch_size
    self._builder = builder
    self._image_size = image_size
    self._seed = seed
    self._process_index = process_index
    self._local_batch = global_batch_size // process_count
    self._local_eval_batch = eval_batch_size // process_count
    self._train_split = tfds.split_for_jax_process(
        TRAIN_SPLIT, process_index=process_index,
        process_count=process_count, drop_remainder=True)
    self._eval_split = tfds.split_for_jax_process(
        EVAL_SPLIT, process_index=process_index, process_count=process_count)
    share = self._num_examples(self._train_split)
    self.steps_per_epoch = share // self._local_batch
    if not self.steps_per_epoch:
      raise ValueError(f'batch_size={global_batch_size} exceeds the '
                       f'{share * process_count} training examples')
    self.num_eval_examples = self._num_examples(EVAL_SPLIT)
    self.num_eval_batches = math.ceil(self.num_eval_examples /
                                      eval_batch_size)

  def _read(self, split: Any, **kwargs: Any) -> tf.data.Dataset:
    return self._builder.as_dataset(split=split, decoders=_DECODERS,
                                    **kwargs)

  def _num_examples(self, split: Any) -> int:
    # The reader's cardinality: correct for sub-splits and mocked data.
    count = int(self._read(split, shuffle_files=False).cardinality())
    if count < 0:
      raise ValueError(f'unknown number of examples in {split}')
    return count

  def _epoch(self, epoch: int, skip_batches: int) -> tf.data.Dataset:
    """This process's batches of ``epoch`` after the first ``skip``."""
    file_seed, buffer_seed = np.random.SeedSequence(
        [self._seed, epoch]).generate_state(2)
    dataset = self._read(
        self._train_split, shuffle_files=True,
        read_config=tfds.ReadConfig(shuffle_seed=int(file_seed)))
    dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=int(buffer_seed))
    dataset = dataset.take(self.steps_per_epoch * self._local_batch)
    # Positions count before the skip, so augmentation does not depend on
    # where a run started; records skipped are never decoded.
    dataset = dataset.enumerate().skip(skip_batches * self._local_batch)
    epoch_seed = tf.random.experimental.stateless_fold_in(
        tf.constant([self._seed, self._process_index], tf.int64), epoch)

    def preprocess(position, example):
      seed = tf.random.experimental.stateless_fold_in(epoch_seed, position)
      return {'inputs': train_image(example['image'], seed, self._image_size),
              'labels': tf.cast(example['label'], tf.int32),
              'weights': tf.ones([], tf.float32)}

    dataset = dataset.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
    return _with_options(dataset.batch(self._local_batch,
                                       drop_remainder=True))

  def train_batches(self,
                    start_step: int = 0) -> Iterator[in_memory.Batch]:
    """This process's training batches from ``start_step`` on (endless)."""
    epoch, skip = divmod(start_step, self.steps_per_epoch)
    while True:
      yield from self._epoch(epoch, skip).as_numpy_iterator()
      epoch, skip = epoch + 1, 0

  def eval_batches(self) -> Iterator[in_memory.Batch]:
    """This process's share of 'validation', padded, with weights."""

    def preprocess(example):
      return {'inputs': eval_image(example['image'], self._image_size),
              'labels': tf.cast(example['label'], tf.int32),
              'weights': tf.ones([], tf.float32)}

    dataset = self._read(self._eval_split, shuffle_files=False).map(
        preprocess, num_parallel_calls=tf.data.AUTOTUNE)
    padding = tf.data.Dataset.from_tensors({
        'inputs': tf.zeros([self._image_size, self._image_size, 3]),
        'labels': tf.zeros([], tf.int32),
        'weights': tf.zeros([], tf.float32)}).repeat()
    dataset = dataset.concatenate(padding).take(
        self.num_eval_batches * self._local_eval_batch)
    return _with_options(
        dataset.batch(self._local_eval_batch)).as_numpy_iterator()


def create_pipeline(config: Any, *, process_index: int,
                    process_count: int) -> ImageNetPipeline:
  """The ImageNet pipeline of a run config."""
  builder = tfds.builder('imagenet2012',
                         data_dir=config.dataset.tfds_data_dir or None)
  # A no-op once built; otherwise builds from the manual download.
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=config.dataset.local_dir or None))
  return ImageNetPipeline(
      builder=builder, image_size=config.dataset.image_size,
      global_batch_size=config.batch_size,
      eval_batch_size=config.eval_batch_size, seed=config.seed,
      process_index=process_index, process_count=process_count)
