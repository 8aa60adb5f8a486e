"""tf.data input for data sets that fit in host memory.

The training stream is a pure function of (seed, step): example positions
``step * batch + i`` are mapped through a per-epoch pseudorandom permutation
(``tf.random.experimental.index_shuffle``) and augmentation draws from
stateless seeds. Resuming at step s therefore needs nothing but s, and two
runs with the same seed see the same batches.
"""

from collections.abc import Callable, Iterator
import math

import numpy as np
import tensorflow as tf

Examples = dict[str, np.ndarray]
Batch = dict[str, np.ndarray]
# (examples, stateless seed [2], train) -> {'inputs', 'labels'} and optional
# per-label 'weights' (e.g. 0 for padding inside an example).
Preprocess = Callable[[dict[str, tf.Tensor], tf.Tensor, bool],
                      dict[str, tf.Tensor]]

_MAX_STEPS = 2**62


def to_numpy(dataset: tf.data.Dataset, chunk: int = 10_000) -> Examples:
  """All elements of a finite dataset of feature dicts, stacked."""
  parts = list(dataset.batch(chunk).as_numpy_iterator())
  if not parts:
    raise ValueError('the dataset is empty')
  return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _num_examples(examples: Examples, what: str) -> int:
  sizes = {k: len(v) for k, v in examples.items()}
  if len(set(sizes.values())) != 1:
    raise ValueError(f'{what} features have different lengths: {sizes}')
  return next(iter(sizes.values()))


def _with_weights(batch: dict[str, tf.Tensor],
                  valid: tf.Tensor) -> dict[str, tf.Tensor]:
  """``batch`` with per-label 'weights' for examples marked ``valid``.

  Validity is broadcast over the labels and multiplied by any per-label
  weights that preprocessing returned.
  """
  labels = batch['labels']
  shape = tf.concat([tf.shape(valid), tf.ones([tf.rank(labels) - 1],
                                              tf.int32)], 0)
  weights = tf.broadcast_to(tf.reshape(tf.cast(valid, tf.float32), shape),
                            tf.shape(labels))
  if 'weights' in batch:
    weights *= tf.cast(batch['weights'], tf.float32)
  return {**batch, 'weights': weights}


class InMemoryPipeline:
  """Batches of numpy arrays for training and complete evaluation.

  Every process reads its own slice of each global batch, so the same code
  feeds one device, many devices, or many hosts.
  """

  def __init__(self, *, train: Examples, eval: Examples,  # pylint: disable=redefined-builtin
               preprocess: Preprocess, global_batch_size: int,
               eval_batch_size: int, seed: int, num_classes: int, task: str,
               process_index: int = 0, process_count: int = 1):
    """Creates the pipeline.

    Args:
      train: training features, e.g. {'image': [N, ...], 'label': [N]}.
      eval: evaluation features with the same keys.
      preprocess: turns gathered features into {'inputs', 'labels'}.
      global_batch_size: training batch over all processes.
      eval_batch_size: evaluation batch over all processes.
      seed: seeds the shuffling and augmentation.
      num_classes: output classes (vocabulary size for language models).
      task: 'classification' or 'language_model'.
      process_index: this process's index.
      process_count: the number of processes.
    """
    self.num_train_examples = _num_examples(train, 'train')
    self.num_eval_examples = _num_examples(eval, 'eval')
    for name, size in (('batch_size', global_batch_size),
                       ('eval_batch_size', eval_batch_size)):
      if size <= 0 or size % process_count:
        raise ValueError(f'{name}={size} must be a positive multiple of the '
                         f'number of processes ({process_count})')
    if global_batch_size > self.num_train_examples:
      raise ValueError(f'batch_size={global_batch_size} exceeds the '
                       f'{self.num_train_examples} training examples')
    self.num_classes = num_classes
    self.task = task
    self.global_batch_size = global_batch_size
    self.eval_batch_size = eval_batch_size
    self.num_eval_batches = math.ceil(self.num_eval_examples / eval_batch_size)
    self._seed = seed
    self._preprocess = preprocess
    self._process_index = process_index
    self._process_count = process_count
    self._train = {k: tf.constant(v) for k, v in train.items()}
    self._eval = {k: tf.constant(v) for k, v in eval.items()}

  @property
  def steps_per_epoch(self) -> float:
    return self.num_train_examples / self.global_batch_size

  def _train_batch(self, step: tf.Tensor) -> dict[str, tf.Tensor]:
    n = self.num_train_examples
    local = self.global_batch_size // self._process_count
    first = step * self.global_batch_size
    positions = first + self._process_index * local + tf.range(
        local, dtype=tf.int64)
    # A global batch spans at most two epochs (batch <= examples).
    epoch = first // n
    in_epoch = positions % n
    this_epoch = tf.random.experimental.index_shuffle(
        in_epoch, seed=tf.stack([tf.constant(self._seed, tf.int64), epoch]),
        max_index=n - 1)
    next_epoch = tf.random.experimental.index_shuffle(
        in_epoch, seed=tf.stack([tf.constant(self._seed, tf.int64),
                                 epoch + 1]), max_index=n - 1)
    indices = tf.where(positions // n == epoch, this_epoch, next_epoch)
    examples = {k: tf.gather(v, indices) for k, v in self._train.items()}
    augment_seed = tf.stack([
        tf.constant(self._seed, tf.int64),
        step * self._process_count + self._process_index])
    return _with_weights(self._preprocess(examples, augment_seed, True),
                         tf.ones([local], tf.bool))

  def _eval_batch(self, index: tf.Tensor) -> dict[str, tf.Tensor]:
    n = self.num_eval_examples
    local = self.eval_batch_size // self._process_count
    positions = index * self.eval_batch_size + self._process_index * local + (
        tf.range(local, dtype=tf.int64))
    valid = positions < n
    examples = {k: tf.gather(v, tf.minimum(positions, n - 1))
                for k, v in self._eval.items()}
    return _with_weights(
        self._preprocess(examples, tf.zeros([2], tf.int64), False), valid)

  @staticmethod
  def _as_numpy(dataset: tf.data.Dataset) -> Iterator[Batch]:
    options = tf.data.Options()
    options.deterministic = True
    dataset = dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
    return dataset.as_numpy_iterator()

  def train_batches(self, start_step: int = 0) -> Iterator[Batch]:
    """This process's training batches from ``start_step`` on (endless)."""
    steps = tf.data.Dataset.range(start_step, _MAX_STEPS)
    return self._as_numpy(
        steps.map(self._train_batch, num_parallel_calls=tf.data.AUTOTUNE))

  def eval_batches(self) -> Iterator[Batch]:
    """This process's share of the whole eval split, padded, with weights."""
    batches = tf.data.Dataset.range(self.num_eval_batches)
    return self._as_numpy(
        batches.map(self._eval_batch, num_parallel_calls=tf.data.AUTOTUNE))
