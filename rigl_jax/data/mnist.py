"""MNIST: offline from the original IDX files, or from TFDS."""

import os
from typing import Any

import jax
import numpy as np

from rigl_jax.data import base
from rigl_jax.data import idx
from rigl_jax.data import image_ops
from rigl_jax.data import pipeline
from rigl_jax.data import tfds_source

NUM_CLASSES = 10
_FILES = {
    'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
    'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
}
_SPLITS = ('train', 'test')

Examples = dict[str, np.ndarray]


def load_idx_split(local_dir: str, split: str) -> Examples:
  """{'inputs': uint8 [N, 28, 28, 1], 'labels': int32 [N]} from IDX files."""
  image_file, label_file = (os.path.join(local_dir, f) for f in _FILES[split])
  images = idx.read_idx(image_file)
  labels = idx.read_idx(label_file)
  if images.ndim != 3 or images.shape[1:] != (28, 28):
    raise idx.DataFileError(
        f'{image_file}: expected images of shape '
        f'[N, 28, 28], found {list(images.shape)}'
    )
  if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
    raise idx.DataFileError(
        f'{label_file}: expected {images.shape[0]} labels '
        f'to match {image_file}, found shape '
        f'{list(labels.shape)}'
    )
  if labels.size and labels.max() >= NUM_CLASSES:
    raise idx.DataFileError(
        f'{label_file}: label {labels.max()} is not a ' 'digit'
    )
  return {'inputs': images[..., None], 'labels': labels.astype(np.int32)}


def load_tfds_split(split: str, data_dir: str) -> Examples:
  """The same arrays from ``tfds.data_source('mnist')``."""
  return tfds_source.read_image_classification('mnist', split, data_dir)


def example_spec(dataset_config: Any) -> dict[str, jax.ShapeDtypeStruct]:
  """The features of one example in a batch."""
  del dataset_config
  return {
      'inputs': jax.ShapeDtypeStruct((28, 28, 1), np.uint8),
      'labels': jax.ShapeDtypeStruct((), np.int32),
  }


def preprocess_on_device(
    batch: dict[str, jax.Array], rng: jax.Array, train: bool
) -> dict[str, jax.Array]:
  """uint8 pixels to float32 in [0, 1]; no augmentation."""
  del rng, train
  return {**batch, 'inputs': image_ops.scale_to_unit(batch['inputs'])}


def create_pipeline(
    config: Any, *, process_index: int, process_count: int
) -> pipeline.Pipeline:
  """The MNIST pipeline of a run config."""
  local_dir = config.dataset.local_dir
  if local_dir:
    train, test = (load_idx_split(local_dir, s) for s in _SPLITS)
  else:
    train, test = (
        load_tfds_split(s, config.dataset.tfds_data_dir) for s in _SPLITS
    )
  return pipeline.Pipeline(
      train=pipeline.in_memory(train),
      eval=pipeline.in_memory(test),
      global_batch_size=config.batch_size,
      eval_batch_size=config.eval_batch_size,
      seed=config.seed,
      process_index=process_index,
      process_count=process_count,
      num_workers=config.dataset.num_workers,
  )


DATASET = base.Dataset(
    name='mnist',
    task='classification',
    num_classes=NUM_CLASSES,
    input_shape=(28, 28, 1),
    input_dtype=np.float32,
    # The training set fits in device memory (47 MB).
    in_memory=True,
    create_pipeline=create_pipeline,
    example_spec=example_spec,
    preprocess_on_device=preprocess_on_device,
)
