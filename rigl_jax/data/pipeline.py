"""Batches as pure functions of (seed, step), iterated with Grain.

Training reads an endless stream of example positions: position ``q`` is
example ``permutation(seed, q // n)[q % n]`` of the ``n`` training examples,
a fresh permutation per epoch. Step ``s`` covers positions
``[s * B, (s + 1) * B)`` of the global batch ``B``, and process ``p`` of
``P`` loads its contiguous ``B / P`` of them. The global batch is thus the
same for any number of processes, and resuming at step ``s`` needs nothing
but ``s``.

Evaluation covers every example once, in order; the last batch is padded
with copies of the final example at weight 0, so every process sees the
same number of equally shaped batches.

A split is loaded by a function from example indices to a batch of numpy
features: a gather from arrays in memory, or reading and decoding records.
Batches carry the features and float32 per-example 'weights' (1 for real
examples). Loaders run in Grain's worker processes when ``num_workers >
0``, else in the thread that iterates. A split held in memory can also be
gathered on the devices (``rigl_jax.data.device_feed``): the same stream,
with no transfer per step.
"""

from collections.abc import Callable, Iterator
import dataclasses
import math
from typing import Optional

import grain
import numpy as np

Batch = dict[str, np.ndarray]
# (example indices [L], their global stream positions [L]) -> features. The
# positions seed per-example augmentation independently of the process.
Loader = Callable[[np.ndarray, np.ndarray], Batch]

_ENDLESS = 2**62
# Batches each Grain worker loads ahead.
_WORKER_BUFFER = 4


@dataclasses.dataclass(frozen=True)
class Split:
  """How to load the examples of one split.

  Attributes:
    num_examples: the split's size.
    load: indices and positions -> a batch of features.
    arrays: the features of every example, when the split is in memory.
  """

  num_examples: int
  load: Loader
  arrays: Optional[dict[str, np.ndarray]] = None


def in_memory(arrays: dict[str, np.ndarray]) -> Split:
  """A split of arrays with one row per example."""
  sizes = {k: len(v) for k, v in arrays.items()}
  if len(set(sizes.values())) != 1:
    raise ValueError(f'features have different lengths: {sizes}')

  def load(indices: np.ndarray, positions: np.ndarray) -> Batch:
    del positions  # Augmentation of in-memory data runs on the device.
    return {k: np.take(v, indices, axis=0) for k, v in arrays.items()}

  return Split(
      num_examples=next(iter(sizes.values())), load=load, arrays=arrays
  )


class _EpochPermutations:
  """``permutation(seed, epoch)`` of ``n`` indices, the latest few cached."""

  def __init__(self, n: int, seed: int, cache_size: int = 4):
    self._n = n
    self._seed = seed
    self._cache_size = cache_size
    self._cache: dict[int, np.ndarray] = {}

  def __call__(self, epoch: int) -> np.ndarray:
    if epoch not in self._cache:
      if len(self._cache) >= self._cache_size:
        del self._cache[min(self._cache)]
      rng = np.random.default_rng([self._seed, epoch])
      self._cache[epoch] = rng.permutation(self._n)
    return self._cache[epoch]


class Pipeline:
  """This process's training and evaluation batches of one data set."""

  def __init__(
      self,
      *,
      train: Split,
      eval: Split,
      global_batch_size: int,  # pylint: disable=redefined-builtin
      eval_batch_size: int,
      seed: int,
      process_index: int = 0,
      process_count: int = 1,
      num_workers: int = 0,
  ):
    """Creates the pipeline.

    Args:
      train: the training split (augmentation, if any is done on the host,
        happens in its loader).
      eval: the evaluation split.
      global_batch_size: training batch over all processes.
      eval_batch_size: evaluation batch over all processes.
      seed: seeds the order of the training examples.
      process_index: this process's index.
      process_count: the number of processes.
      num_workers: Grain worker processes that run the loaders; 0 runs them
        in the thread that iterates (best for data already in memory).

    Raises:
      ValueError: a batch size that the processes cannot share, or larger
        than the training split; an empty split.
    """
    for name, size in (
        ('batch_size', global_batch_size),
        ('eval_batch_size', eval_batch_size),
    ):
      if size <= 0 or size % process_count:
        raise ValueError(
            f'{name}={size} must be a positive multiple of the '
            f'number of processes ({process_count})'
        )
    if train.num_examples <= 0 or eval.num_examples <= 0:
      raise ValueError(
          f'empty split: {train.num_examples} training and '
          f'{eval.num_examples} evaluation examples'
      )
    if global_batch_size > train.num_examples:
      raise ValueError(
          f'batch_size={global_batch_size} exceeds the '
          f'{train.num_examples} training examples'
      )
    if num_workers < 0:
      raise ValueError(f'num_workers must be >= 0, got {num_workers}')
    self.train = train
    self.eval = eval
    self.global_batch_size = global_batch_size
    self.eval_batch_size = eval_batch_size
    self.num_eval_batches = math.ceil(eval.num_examples / eval_batch_size)
    self.process_index = process_index
    self.process_count = process_count
    self.local_batch_size = global_batch_size // process_count
    self._local_eval_batch = eval_batch_size // process_count
    self._num_workers = num_workers
    self._permutation = _EpochPermutations(train.num_examples, seed)

  def train_positions(self, steps: np.ndarray) -> np.ndarray:
    """Stream positions of this process's share of each step: [S, L]."""
    first = (
        np.asarray(steps, np.int64)[:, None] * self.global_batch_size
        + self.process_index * self.local_batch_size
    )
    return first + np.arange(self.local_batch_size, dtype=np.int64)

  def train_indices(self, steps: np.ndarray) -> np.ndarray:
    """Example indices of this process's share of each step: [S, L].

    ``steps`` must increase, so the positions increase along the flattened
    result and each epoch's positions form one run.
    """
    positions = self.train_positions(steps).reshape(-1)
    n = self.train.num_examples
    indices = np.empty_like(positions)
    first_epoch, last_epoch = positions[0] // n, positions[-1] // n
    bounds = np.searchsorted(
        positions, np.arange(first_epoch + 1, last_epoch + 1) * n
    )
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(positions)]])
    for epoch, start, end in zip(
        range(first_epoch, last_epoch + 1), starts, ends
    ):
      indices[start:end] = self._permutation(int(epoch))[
          positions[start:end] - epoch * n
      ]
    return indices.reshape(len(steps), self.local_batch_size)

  def train_batch(self, step: int) -> Batch:
    """This process's share of training batch ``step``."""
    positions = self.train_positions(np.array([step]))[0]
    indices = self.train_indices(np.array([step]))[0]
    batch = self.train.load(indices, positions)
    return {**batch, 'weights': np.ones(len(indices), np.float32)}

  def eval_batch(self, index: int) -> Batch:
    """This process's share of evaluation batch ``index``, padded."""
    first = index * self.eval_batch_size + (
        self.process_index * self._local_eval_batch
    )
    positions = np.arange(first, first + self._local_eval_batch, dtype=np.int64)
    valid = positions < self.eval.num_examples
    indices = np.minimum(positions, self.eval.num_examples - 1)
    batch = self.eval.load(indices, positions)
    return {**batch, 'weights': valid.astype(np.float32)}

  def _iterate(self, dataset: grain.MapDataset) -> grain.IterDataset:
    if self._num_workers:
      return dataset.to_iter_dataset(
          grain.ReadOptions(num_threads=1, prefetch_buffer_size=1)
      ).mp_prefetch(
          grain.MultiprocessingOptions(
              num_workers=self._num_workers,
              per_worker_buffer_size=_WORKER_BUFFER,
          )
      )
    # Loading in the consumer's thread: the trainer reads ahead in a thread
    # of its own, which also moves the batches to the devices.
    return dataset.to_iter_dataset(
        grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
    )

  def train_dataset(self, start_step: int = 0) -> grain.IterDataset:
    """This process's training batches from ``start_step`` on (endless)."""
    return self._iterate(
        grain.MapDataset.range(start_step, _ENDLESS).map(self.train_batch)
    )

  def eval_dataset(self) -> grain.IterDataset:
    """This process's share of the whole evaluation split."""
    return self._iterate(
        grain.MapDataset.range(self.num_eval_batches).map(self.eval_batch)
    )

  def train_batches(self, start_step: int = 0) -> Iterator[Batch]:
    return iter(self.train_dataset(start_step))

  def eval_batches(self) -> Iterator[Batch]:
    return iter(self.eval_dataset())
