"""Byte-level language modelling on a text: shared by every text data set.

A split's text is a stream of bytes (ids < 256). Examples are consecutive,
non-overlapping windows of ``sequence_length + 1`` bytes; the model reads
``window[:-1]`` and predicts ``window[1:]``. Training drops the incomplete
last window. Evaluation keeps it, zero-padded, with weight 0 on the padded
labels, so every byte of the split after a window's first is scored once.
"""

from typing import Any

import numpy as np
import tensorflow as tf

from rigl_jax import errors
from rigl_jax.data import in_memory

VOCAB_SIZE = 256  # Bytes.
TASK = 'language_model'


def windows(data: bytes, sequence_length: int, *,
            keep_tail: bool) -> in_memory.Examples:
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
    ids = ids[:full * size]  # A view: no copy of large training texts.
    lengths = np.full(full, size, np.int32)
  return {'window': ids.reshape(-1, size), 'length': lengths}


def preprocess(examples: dict[str, tf.Tensor], seed: tf.Tensor,
               train: bool) -> dict[str, tf.Tensor]:
  """Windows to int32 inputs and next-byte labels, padding weighted 0."""
  del seed, train  # No augmentation.
  window = tf.cast(examples['window'], tf.int32)
  label_positions = tf.range(tf.shape(window)[1] - 1)
  # Label j is byte j + 1 of the window: real while j + 1 < length.
  real = label_positions[None, :] + 1 < examples['length'][:, None]
  return {'inputs': window[:, :-1], 'labels': window[:, 1:],
          'weights': tf.cast(real, tf.float32)}


def tfds_text(dataset: tf.data.Dataset) -> bytes:
  """The 'text' features of a TFDS text dataset, concatenated in order."""
  texts = dataset.map(lambda example: example['text']).batch(10_000)
  return b''.join(b''.join(batch) for batch in texts.as_numpy_iterator())


def create_pipeline(config: Any, train_text: bytes, eval_text: bytes, *,
                    process_index: int,
                    process_count: int) -> in_memory.InMemoryPipeline:
  """The pipeline of a run config over the given training and eval bytes."""
  sequence_length = config.dataset.sequence_length
  if sequence_length <= 0:
    raise errors.ConfigError('config.dataset.sequence_length: must be '
                             f'positive, got {sequence_length}')
  train = windows(train_text, sequence_length, keep_tail=False)
  evaluation = windows(eval_text, sequence_length, keep_tail=True)
  for what, examples, text in (('training', train, train_text),
                               ('evaluation', evaluation, eval_text)):
    if not len(examples['window']):
      raise errors.ConfigError(
          f'config.dataset.sequence_length={sequence_length}: the '
          f'{len(text)} {what} bytes of {config.dataset.name} hold no '
          'window of sequence_length + 1 bytes')
  return in_memory.InMemoryPipeline(
      train=train, eval=evaluation, preprocess=preprocess,
      global_batch_size=config.batch_size,
      eval_batch_size=config.eval_batch_size, seed=config.seed,
      num_classes=VOCAB_SIZE, task=TASK, process_index=process_index,
      process_count=process_count)
