"""What each training step reads: batches sent from the host, or gathered
on the devices from a training set held there.

``Streamed`` moves every batch of the Grain pipeline to the devices from a
thread, a couple of steps ahead. ``Resident`` puts an in-memory training
set on every device once, with a table of the example indices of the next
steps (the pipeline's own stream, so both feeds give the same batches);
the step gathers its batch there, so no transfer happens per step. The
step receives ``feed.inputs(step)`` and turns it into a batch with
``feed.batch`` inside the compiled step.
"""

import functools
from collections.abc import Iterator
from typing import Any

import grain
import jax
import jax.numpy as jnp
import numpy as np

from rigl_jax.data import pipeline as pipeline_lib

# Batches moved to the devices ahead of the step that needs them.
STREAM_PREFETCH = 2
# Index-table entries (steps x batch) held on the devices at a time.
_TABLE_ENTRIES = 2**20


def to_global(
    batch: dict[str, np.ndarray], sharding: jax.sharding.Sharding
) -> dict[str, jax.Array]:
  """This process's part of a batch as global arrays with ``sharding``."""
  return {
      k: jax.make_array_from_process_local_data(sharding, v)
      for k, v in batch.items()
  }


def device_batches(
    dataset: grain.IterDataset, sharding: jax.sharding.Sharding
) -> Iterator[Any]:
  """Global batches, put on the devices by a thread ahead of the consumer."""
  on_device = dataset.map(functools.partial(to_global, sharding=sharding))
  return iter(
      grain.experimental.ThreadPrefetchIterDataset(
          on_device, prefetch_buffer_size=STREAM_PREFETCH
      )
  )


def close(iterator: Iterator[Any]) -> None:
  """Stops an iterator's prefetch thread (and workers) early."""
  stop = getattr(iterator, 'close', None)
  if stop is not None:
    stop()


def _abstract(shape, dtype, sharding) -> jax.ShapeDtypeStruct:
  return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)


class Streamed:
  """Training batches from the host pipeline, one transfer per step."""

  def __init__(
      self,
      pipeline: pipeline_lib.Pipeline,
      shapes: dict[str, jax.ShapeDtypeStruct],
      batch_sharding: jax.sharding.Sharding,
  ):
    """Creates the feed.

    Args:
      pipeline: this process's pipeline.
      shapes: of a global training batch (``data.batch_shapes``).
      batch_sharding: the sharding of batches.
    """
    self._pipeline = pipeline
    self._sharding = batch_sharding
    self._shapes = shapes
    self._batches = None
    self._next_step = None

  def abstract_inputs(self) -> Any:
    return {
        k: _abstract(v.shape, v.dtype, self._sharding)
        for k, v in self._shapes.items()
    }

  @staticmethod
  def batch(inputs: Any, step: jax.Array) -> dict[str, jax.Array]:
    del step
    return inputs

  def inputs(self, step: int) -> Any:
    """The batch of ``step``; steps must come in order."""
    if self._next_step != step:
      self.close()
      self._batches = device_batches(
          self._pipeline.train_dataset(step), self._sharding
      )
    self._next_step = step + 1
    return next(self._batches)

  def close(self) -> None:
    if self._batches is not None:
      close(self._batches)
      self._batches = None


class Resident:
  """Training batches gathered on the devices from a training set held there.

  The features are replicated on every device; the index table, one row
  per step, is split along the batch like a batch would be, so each device
  gathers its own examples.
  """

  def __init__(
      self,
      pipeline: pipeline_lib.Pipeline,
      replicated: jax.sharding.Sharding,
      table_sharding: jax.sharding.Sharding,
  ):
    """Creates the feed and puts the training set on the devices.

    Args:
      pipeline: this process's pipeline; its training split is in memory.
      replicated: a fully replicated sharding.
      table_sharding: the index table's, split on its second axis.
    """
    if pipeline.train.arrays is None:
      raise ValueError('the training split is not in memory')
    self._pipeline = pipeline
    self._replicated = replicated
    self._table_sharding = table_sharding
    self._features = {
        k: jax.make_array_from_process_local_data(replicated, v)
        for k, v in pipeline.train.arrays.items()
    }
    self._rows = max(1, _TABLE_ENTRIES // pipeline.global_batch_size)
    self._first_step = None
    self._table = None

  def abstract_inputs(self) -> Any:
    batch = self._pipeline.global_batch_size
    return {
        'features': {
            k: _abstract(v.shape, v.dtype, self._replicated)
            for k, v in self._features.items()
        },
        'indices': _abstract(
            (self._rows, batch), np.int32, self._table_sharding
        ),
        'first_step': _abstract((), np.int32, self._replicated),
    }

  @staticmethod
  def batch(inputs: Any, step: jax.Array) -> dict[str, jax.Array]:
    """The batch of ``step``, gathered from the features (in the step)."""
    indices = inputs['indices'][step - inputs['first_step']]
    batch = {
        k: jnp.take(v, indices, axis=0) for k, v in inputs['features'].items()
    }
    batch['weights'] = jnp.ones(indices.shape, jnp.float32)
    return batch

  def inputs(self, step: int) -> Any:
    """Features and the index table that holds ``step``."""
    if self._first_step is None or not (
        self._first_step <= step < self._first_step + self._rows
    ):
      self._first_step = step
      local = self._pipeline.train_indices(
          np.arange(step, step + self._rows)
      ).astype(np.int32)
      self._table = {
          'indices': jax.make_array_from_process_local_data(
              self._table_sharding, local
          ),
          'first_step': jax.device_put(np.int32(step), self._replicated),
      }
    return {'features': self._features, **self._table}

  def close(self) -> None:
    pass
