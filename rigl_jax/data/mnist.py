"""MNIST: from TFDS, or offline from the original IDX files."""

import os
from typing import Optional

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from rigl_jax.data import idx
from rigl_jax.data import in_memory

NUM_CLASSES = 10
_FILES = {
    'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
    'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
}


def load_idx_split(local_dir: str, split: str) -> in_memory.Examples:
  """Reads one split from the original IDX files in ``local_dir``."""
  image_file, label_file = (os.path.join(local_dir, f) for f in _FILES[split])
  images = idx.read_idx(image_file)
  labels = idx.read_idx(label_file)
  if images.ndim != 3 or images.shape[1:] != (28, 28):
    raise idx.DataFileError(f'{image_file}: expected images of shape '
                            f'[N, 28, 28], found {list(images.shape)}')
  if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
    raise idx.DataFileError(f'{label_file}: expected {images.shape[0]} labels '
                            f'to match {image_file}, found shape '
                            f'{list(labels.shape)}')
  if labels.size and labels.max() >= NUM_CLASSES:
    raise idx.DataFileError(f'{label_file}: label {labels.max()} is not a '
                            'digit')
  return {'image': images[..., None], 'label': labels.astype(np.int64)}


def load_tfds_split(split: str, data_dir: Optional[str]) -> in_memory.Examples:
  """Loads one split through ``tfds.load('mnist')``."""
  dataset = tfds.load('mnist', split=split, as_supervised=True,
                      data_dir=data_dir)
  return in_memory.to_numpy(dataset.map(
      lambda image, label: {'image': image, 'label': label}))


def preprocess(examples: dict[str, tf.Tensor], seed: tf.Tensor,
               train: bool) -> dict[str, tf.Tensor]:
  """uint8 [28, 28, 1] images to float32 in [0, 1]; no augmentation."""
  del seed, train
  return {'inputs': tf.cast(examples['image'], tf.float32) / 255.0,
          'labels': examples['label']}


def create_pipeline(config, *, process_index: int,
                    process_count: int) -> in_memory.InMemoryPipeline:
  """The MNIST pipeline of a run config."""
  local_dir = config.dataset.local_dir
  if local_dir:
    train, test = (load_idx_split(local_dir, s) for s in ('train', 'test'))
  else:
    data_dir = config.dataset.tfds_data_dir or None
    train, test = (load_tfds_split(s, data_dir) for s in ('train', 'test'))
  return in_memory.InMemoryPipeline(
      train=train, eval=test, preprocess=preprocess,
      global_batch_size=config.batch_size,
      eval_batch_size=config.eval_batch_size, seed=config.seed,
      num_classes=NUM_CLASSES, task='classification',
      process_index=process_index, process_count=process_count)
