"""WikiText-103 (raw), byte level: the input pipeline.

The raw release ``wikitext-103-raw-v1.zip`` holds
``wikitext-103-raw/wiki.{train,valid,test}.raw``. With
``config.dataset.local_dir`` holding that archive, runs read the splits
straight from it (no TFDS, no TensorFlow). Without it, they read the TFDS
records that ``rigl_jax.data.wikitext103_builder`` prepares (downloading
the archive), which needs the ``prepare`` extra once.

Runs train on 'train' and evaluate on 'validation' (the split for model
selection; 'test' is left for final reporting).
"""

import os
from typing import Any
import zipfile

from etils import epath

from rigl_jax import errors
from rigl_jax.data import language_model
from rigl_jax.data import pipeline

URL = (
    'https://s3.amazonaws.com/research.metamind.io/wikitext/'
    'wikitext-103-raw-v1.zip'
)
ARCHIVE = 'wikitext-103-raw-v1.zip'
# Split -> file in the archive.
MEMBERS = {
    'train': 'wikitext-103-raw/wiki.train.raw',
    'validation': 'wikitext-103-raw/wiki.valid.raw',
    'test': 'wikitext-103-raw/wiki.test.raw',
}
TRAIN_SPLIT = 'train'
EVAL_SPLIT = 'validation'

IN_MEMORY = language_model.IN_MEMORY
example_spec = language_model.example_spec
preprocess_on_device = language_model.preprocess_on_device


def check_archive(path: epath.PathLike) -> None:
  """Raises ``DataFileError`` naming ``path`` unless it holds every split."""
  try:
    with epath.Path(path).open('rb') as f, zipfile.ZipFile(f) as archive:
      names = set(archive.namelist())
  except FileNotFoundError:
    raise errors.DataFileError(f'{path}: file not found') from None
  except (OSError, zipfile.BadZipFile) as e:
    raise errors.DataFileError(
        f'{path}: not a readable zip archive: {e}'
    ) from None
  missing = sorted(set(MEMBERS.values()) - names)
  if missing:
    raise errors.DataFileError(f'{path}: the archive lacks {missing}')


def read_archive_split(path: epath.PathLike, split: str) -> bytes:
  """The bytes of one split's file in the raw archive."""
  check_archive(path)
  try:
    with epath.Path(path).open('rb') as f, zipfile.ZipFile(f) as archive:
      return archive.read(MEMBERS[split])
  except (OSError, zipfile.BadZipFile) as e:
    raise errors.DataFileError(
        f'{path}: cannot read {MEMBERS[split]}: {e}'
    ) from None


def read_tfds_split(split: str, data_dir: str) -> bytes:
  """One split's bytes from the prepared TFDS records (prepared if needed)."""
  # The builder imports TFDS; only this path needs it.
  from rigl_jax.data import wikitext103_builder  # pylint: disable=g-import-not-at-top

  source = wikitext103_builder.data_source(split, data_dir)
  return b''.join(source[i]['text'] for i in range(len(source)))


def load_splits(config: Any) -> tuple[bytes, bytes]:
  """(train, eval) bytes: from the archive in local_dir, else from TFDS."""
  local_dir = config.dataset.local_dir
  if local_dir:
    archive = os.path.join(local_dir, ARCHIVE)
    return tuple(
        read_archive_split(archive, s) for s in (TRAIN_SPLIT, EVAL_SPLIT)
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
