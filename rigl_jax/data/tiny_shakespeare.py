"""Tiny Shakespeare, byte level: offline from ``input.txt``, or from TFDS.

The offline file is split exactly as the TFDS builder (tiny_shakespeare
1.0.0) splits it: the first ``int(0.9 * n)`` characters are 'train', the
first half (rounded down) of the rest 'validation', and the remainder
'test'. For the 1,115,394-byte original that is 1,003,854 / 55,770 / 55,770.

Runs train on 'train' and evaluate on 'validation'; 'test' is left for
final reporting outside the training loop.
"""

import os
from typing import Any

from rigl_jax import errors
from rigl_jax.data import language_model
from rigl_jax.data import pipeline
from rigl_jax.data import tfds_source

FILENAME = 'input.txt'
TRAIN_SPLIT = 'train'
EVAL_SPLIT = 'validation'


def split_like_tfds(text: str) -> dict[str, str]:
  """The train/validation/test texts the TFDS builder makes of ``text``."""
  # As in tensorflow_datasets/datasets/tiny_shakespeare: 90% / 5% / 5%, cut
  # on characters (not bytes) of the decoded text.
  i = int(len(text) * 0.9)
  train, rest = text[:i], text[i:]
  i = int(len(rest) * 0.5)
  return {'train': train, 'validation': rest[:i], 'test': rest[i:]}


def load_local_splits(local_dir: str) -> dict[str, bytes]:
  """The UTF-8 bytes of each split of ``local_dir/input.txt``."""
  path = os.path.join(local_dir, FILENAME)
  try:
    with open(path, 'rb') as f:
      text = f.read().decode('utf-8')
  except FileNotFoundError:
    raise errors.DataFileError(f'{path}: file not found') from None
  except (OSError, UnicodeDecodeError) as e:
    raise errors.DataFileError(
        f'{path}: cannot be read as UTF-8 text: {e}'
    ) from None
  if not text:
    raise errors.DataFileError(f'{path}: the file is empty')
  return {
      name: part.encode('utf-8') for name, part in split_like_tfds(text).items()
  }


def load_tfds_split(split: str, data_dir: str) -> bytes:
  """The split's text from ``tfds.data_source('tiny_shakespeare')``."""
  source = tfds_source.data_source('tiny_shakespeare', split, data_dir)
  return b''.join(_as_bytes(source[i]['text']) for i in range(len(source)))


def _as_bytes(text: Any) -> bytes:
  return text.encode('utf-8') if isinstance(text, str) else bytes(text)


def create_pipeline(
    config: Any, *, process_index: int, process_count: int
) -> pipeline.Pipeline:
  """The Tiny Shakespeare pipeline of a run config."""
  local_dir = config.dataset.local_dir
  if local_dir:
    splits = load_local_splits(local_dir)
    train, evaluation = splits[TRAIN_SPLIT], splits[EVAL_SPLIT]
  else:
    train, evaluation = (
        load_tfds_split(s, config.dataset.tfds_data_dir)
        for s in (TRAIN_SPLIT, EVAL_SPLIT)
    )
  return language_model.create_pipeline(
      config,
      train,
      evaluation,
      process_index=process_index,
      process_count=process_count,
  )


DATASET = language_model.dataset('tiny_shakespeare', create_pipeline)
