"""Byte-level language modelling on a text: shared by every text data set.

A split's text is a stream of bytes (ids < 256). Examples are consecutive,
non-overlapping windows of ``sequence_length + 1`` bytes; the model reads
``window[:-1]`` and predicts ``window[1:]``. Training drops the incomplete
last window. Evaluation keeps it, zero-padded, with weight 0 on the padded
labels, so every byte of the split after a window's first is scored once.

Batches carry the uint8 windows and their lengths; the device splits them
into inputs and labels.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rigl_jax import errors
from rigl_jax.data import base
from rigl_jax.data import pipeline

VOCAB_SIZE = 256  # Bytes.
TASK = 'language_model'
# Texts fit in device memory (WikiText-103's training set: 540 MB).
IN_MEMORY = True
# The config.dataset keys of every text data set, with their defaults.
CONFIG_KEYS = {'sequence_length': 512}  # Bytes per example.

Examples = dict[str, np.ndarray]


def windows(data: bytes, sequence_length: int, *, keep_tail: bool) -> Examples:
  """Non-overlapping windows of ``sequence_length + 1`` bytes of ``data``.

  Args:
    data: the split's bytes.
    sequence_length: model inputs (and labels) per example.
    keep_tail: keep the last, incomplete window (zero-padded) if it holds at
      least one input and one label.

  Returns:
    {'window': uint8 [N, sequence_length + 1], 'length': int32 [N]}, where
    ``length`` counts the real bytes of each window.
  """
  if sequence_length <= 0:
    raise ValueError(f'sequence_length must be positive, got {sequence_length}')
  size = sequence_length + 1
  ids = np.frombuffer(data, np.uint8)
  full = len(ids) // size
  tail = len(ids) - full * size
  if keep_tail and tail >= 2:
    ids = np.concatenate([ids, np.zeros(size - tail, np.uint8)])
    lengths = np.full(full + 1, size, np.int32)
    lengths[-1] = tail
  else:
    ids = ids[: full * size]  # A view: no copy of large training texts.
    lengths = np.full(full, size, np.int32)
  return {'window': ids.reshape(-1, size), 'length': lengths}


def example_spec(dataset_config: Any) -> dict[str, jax.ShapeDtypeStruct]:
  """The features of one example in a batch."""
  return {
      'window': jax.ShapeDtypeStruct(
          (dataset_config.sequence_length + 1,), np.uint8
      ),
      'length': jax.ShapeDtypeStruct((), np.int32),
  }


def preprocess_on_device(
    batch: dict[str, jax.Array], rng: jax.Array, train: bool
) -> dict[str, jax.Array]:
  """Windows to int32 inputs and next-byte labels, padding weighted 0."""
  del rng, train  # No augmentation.
  window = batch['window'].astype(jnp.int32)
  label_positions = jnp.arange(window.shape[1] - 1)
  # Label j is byte j + 1 of the window: real while j + 1 < length.
  real = label_positions[None, :] + 1 < batch['length'][:, None]
  return {
      'inputs': window[:, :-1],
      'labels': window[:, 1:],
      'weights': batch['weights'][:, None] * real.astype(jnp.float32),
  }


def create_pipeline(
    config: Any,
    train_text: bytes,
    eval_text: bytes,
    *,
    process_index: int,
    process_count: int,
) -> pipeline.Pipeline:
  """The pipeline of a run config over the given training and eval bytes."""
  sequence_length = config.dataset.sequence_length
  if sequence_length <= 0:
    raise errors.ConfigError(
        'config.dataset.sequence_length: must be '
        f'positive, got {sequence_length}'
    )
  train = windows(train_text, sequence_length, keep_tail=False)
  evaluation = windows(eval_text, sequence_length, keep_tail=True)
  for what, examples, text in (
      ('training', train, train_text),
      ('evaluation', evaluation, eval_text),
  ):
    if not len(examples['window']):
      raise errors.ConfigError(
          f'config.dataset.sequence_length={sequence_length}: the '
          f'{len(text)} {what} bytes of {config.dataset.name} hold no '
          'window of sequence_length + 1 bytes'
      )
  return pipeline.Pipeline(
      train=pipeline.in_memory(train),
      eval=pipeline.in_memory(evaluation),
      global_batch_size=config.batch_size,
      eval_batch_size=config.eval_batch_size,
      seed=config.seed,
      process_index=process_index,
      process_count=process_count,
      num_workers=config.dataset.num_workers,
  )


def dataset(
    name: str, create_pipeline: Callable[..., pipeline.Pipeline]
) -> base.Dataset:
  """The declaration of the byte-level text data set ``name``."""
  return base.Dataset(
      name=name,
      task=TASK,
      num_classes=VOCAB_SIZE,
      input_shape=lambda dataset_config: (dataset_config.sequence_length,),
      input_dtype=np.int32,
      in_memory=IN_MEMORY,
      create_pipeline=create_pipeline,
      example_spec=example_spec,
      preprocess_on_device=preprocess_on_device,
      config_keys=CONFIG_KEYS,
  )
