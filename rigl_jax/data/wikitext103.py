"""WikiText-103 (raw), byte level: the input pipeline.

With ``config.dataset.local_dir`` holding the raw release
(``rigl_jax.data.wikitext103_archive``), runs read the splits straight from
it (no TFDS, no TensorFlow). Without it, they read the TFDS records that
``rigl_jax.data.tfds_builders.wikitext103`` prepares (downloading the
archive), which needs the ``prepare`` extra once.

Runs train on 'train' and evaluate on 'validation' (the split for model
selection; 'test' is left for final reporting).
"""

import os
from typing import Any

from rigl_jax.data import language_model
from rigl_jax.data import pipeline
from rigl_jax.data import wikitext103_archive

ARCHIVE = wikitext103_archive.ARCHIVE
MEMBERS = wikitext103_archive.MEMBERS
TRAIN_SPLIT = 'train'
EVAL_SPLIT = 'validation'


def read_tfds_split(split: str, data_dir: str) -> bytes:
  """One split's bytes from the prepared TFDS records (prepared if needed)."""
  # The builder imports TFDS; only this path needs it.
  from rigl_jax.data.tfds_builders import wikitext103 as builder  # pylint: disable=g-import-not-at-top

  source = builder.data_source(split, data_dir)
  return b''.join(source[i]['text'] for i in range(len(source)))


def load_splits(config: Any) -> tuple[bytes, bytes]:
  """(train, eval) bytes: from the archive in local_dir, else from TFDS."""
  local_dir = config.dataset.local_dir
  if local_dir:
    archive = os.path.join(local_dir, ARCHIVE)
    return tuple(
        wikitext103_archive.read_split(archive, s)
        for s in (TRAIN_SPLIT, EVAL_SPLIT)
    )
  return tuple(
      read_tfds_split(s, config.dataset.tfds_data_dir)
      for s in (TRAIN_SPLIT, EVAL_SPLIT)
  )


def create_pipeline(
    config: Any, *, process_index: int, process_count: int
) -> pipeline.Pipeline:
  """The WikiText-103 pipeline of a run config."""
  train, evaluation = load_splits(config)
  return language_model.create_pipeline(
      config,
      train,
      evaluation,
      process_index=process_index,
      process_count=process_count,
  )


DATASET = language_model.dataset('wikitext103', create_pipeline)
