"""TFDS data sets read as ArrayRecord data sources: random access, no TensorFlow.

Preparing a TFDS data set (downloading it and writing its ArrayRecord files)
uses TensorFlow, once: ``python scripts/prepare_tfds.py --dataset=NAME``
with the ``prepare`` extra installed. Reading a prepared data set needs only
TensorFlow Datasets (the ``tfds`` extra), imported when a run reads from
TFDS.
"""

from collections.abc import Sequence
from typing import Any, Optional

from etils import epath
import numpy as np

from rigl_jax import errors

FILE_FORMAT = 'array_record'


def import_tfds():
  """The ``tensorflow_datasets`` module, or a ConfigError saying what to do."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise errors.ConfigError(
        'config.dataset.local_dir is empty, so the data come from TFDS, '
        "which is not installed: pip install -e '.[tfds]', or set "
        'config.dataset.local_dir to an offline copy'
    ) from None
  return tfds


def data_source(
    name: str,
    split: str,
    data_dir: Optional[str],
    skip_decoding: Sequence[str] = (),
) -> Sequence[Any]:
  """A random-access sequence of the examples of ``name``'s ``split``.

  Args:
    name: the TFDS name, e.g. 'mnist'.
    split: e.g. 'train'.
    data_dir: the TFDS data dir ('' or None: TFDS's default).
    skip_decoding: features to return undecoded (e.g. JPEG bytes).

  Raises:
    DataFileError: the data set is not prepared as ArrayRecord files.
  """
  tfds = import_tfds()
  decoders = {key: tfds.decode.SkipDecoding() for key in skip_decoding}
  try:
    return tfds.data_source(
        name,
        split=split,
        data_dir=data_dir or None,
        download=False,
        decoders=decoders or None,
        builder_kwargs={'file_format': FILE_FORMAT},
    )
  except (KeyError, FileNotFoundError, NotImplementedError) as e:
    where = data_dir or 'the default TFDS data dir'
    raise errors.DataFileError(
        f'{where}: TFDS {name!r} split {split!r} is not prepared there as '
        f'{FILE_FORMAT} files ({e}); prepare it once with python '
        f'scripts/prepare_tfds.py --dataset={name} '
        "(pip install -e '.[prepare]'), or set config.dataset.local_dir"
    ) from None


def prepare(
    name: str, data_dir: Optional[str], manual_dir: Optional[str] = None
) -> epath.Path:
  """Downloads and writes ``name``'s ArrayRecord files; returns where.

  Uses TensorFlow (the ``prepare`` extra). ``name`` is a TFDS name or
  'wikitext103' (rigl_jax's own builder). A no-op once prepared.
  """
  if name == 'wikitext103':
    from rigl_jax.data.tfds_builders import wikitext103 as builder  # pylint: disable=g-import-not-at-top

    return builder.prepare(data_dir, manual_dir).data_dir
  tfds = import_tfds()
  dataset_builder = tfds.builder(
      name, data_dir=data_dir or None, file_format=FILE_FORMAT
  )
  dataset_builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(
          manual_dir=manual_dir or None
      )
  )
  return dataset_builder.data_dir


def read_all(
    source: Sequence[Any], features: dict[str, str]
) -> dict[str, np.ndarray]:
  """Every example of ``source`` as stacked arrays.

  Args:
    source: a data source.
    features: our name -> the TFDS feature name.
  """
  examples = [source[i] for i in range(len(source))]
  if not examples:
    raise errors.DataFileError(f'{source}: the split is empty')
  return {
      ours: np.stack([np.asarray(e[theirs]) for e in examples])
      for ours, theirs in features.items()
  }


def read_image_classification(
    name: str, split: str, data_dir: Optional[str]
) -> dict[str, np.ndarray]:
  """{'inputs': uint8 images, 'labels': int32} of a TFDS image data set."""
  examples = read_all(
      data_source(name, split, data_dir), {'inputs': 'image', 'labels': 'label'}
  )
  return {
      'inputs': examples['inputs'].astype(np.uint8),
      'labels': examples['labels'].astype(np.int32),
  }
