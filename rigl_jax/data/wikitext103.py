"""WikiText-103 (raw), byte level: a TFDS builder and the input pipeline.

TFDS has no WikiText builder, so ``WikiText103`` builds the raw release,
``wikitext-103-raw-v1.zip`` holding ``wikitext-103-raw/wiki.{train,valid,
test}.raw``, into TFDS records: one example per line (with its newline), in
file order, so a split's examples concatenated give back the file byte for
byte. The builder downloads the archive, or takes it from the manual dir
when it is there; ``config.dataset.local_dir`` is that manual dir, so a run
with it builds offline. Building once writes about 0.5 GB under the TFDS
data dir; later runs read the records. In multi-host runs, build once
before launching (every process would otherwise build it).

Runs train on 'train' and evaluate on 'validation' (the split for model
selection; 'test' is left for final reporting).
"""

from collections.abc import Iterator
import os
from typing import Any
import zipfile

from etils import epath
import tensorflow_datasets as tfds

from rigl_jax import errors
from rigl_jax.data import in_memory
from rigl_jax.data import language_model

URL = ('https://s3.amazonaws.com/research.metamind.io/wikitext/'
       'wikitext-103-raw-v1.zip')
ARCHIVE = 'wikitext-103-raw-v1.zip'
# TFDS split -> file in the archive.
MEMBERS = {
    'train': 'wikitext-103-raw/wiki.train.raw',
    'validation': 'wikitext-103-raw/wiki.valid.raw',
    'test': 'wikitext-103-raw/wiki.test.raw',
}
TRAIN_SPLIT = 'train'
EVAL_SPLIT = 'validation'

_CITATION = """@misc{merity2016pointer,
  title={Pointer Sentinel Mixture Models},
  author={Stephen Merity and Caiming Xiong and James Bradbury and
          Richard Socher},
  year={2016}, eprint={1609.07843}, archivePrefix={arXiv}}"""


def check_archive(path: epath.PathLike) -> None:
  """Raises ``DataFileError`` naming ``path`` unless it holds every split."""
  try:
    with epath.Path(path).open('rb') as f, zipfile.ZipFile(f) as archive:
      names = set(archive.namelist())
  except FileNotFoundError:
    raise errors.DataFileError(f'{path}: file not found') from None
  except (OSError, zipfile.BadZipFile) as e:
    raise errors.DataFileError(f'{path}: not a readable zip archive: {e}'
                              ) from None
  missing = sorted(set(MEMBERS.values()) - names)
  if missing:
    raise errors.DataFileError(f'{path}: the archive lacks {missing}')


class WikiText103(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """WikiText-103 raw text, one example per line, in file order."""

  # Not registered with TFDS (no import side effects); build it through
  # this class, e.g. ``WikiText103(data_dir=...).download_and_prepare()``.
  name = 'wikitext103'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Raw release, one example per line.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f'Optional: put {ARCHIVE} (from {URL}) in the manual dir to build '
      'without network access.')

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description='WikiText-103, raw (untokenized) release.',
        features=tfds.features.FeaturesDict({'text': tfds.features.Text()}),
        homepage=('https://blog.salesforceairesearch.com/'
                  'the-wikitext-long-term-dependency-language-modeling-'
                  'dataset/'),
        citation=_CITATION,
        # Keep file order: the splits are texts, not sets of examples.
        disable_shuffling=True)

  def _split_generators(
      self, dl_manager: tfds.download.DownloadManager
  ) -> dict[str, Iterator[tuple[int, dict[str, bytes]]]]:
    archive = _manual_archive(dl_manager) or dl_manager.download(URL)
    check_archive(archive)
    return {split: self._generate_examples(archive, member)
            for split, member in MEMBERS.items()}

  def _generate_examples(
      self, archive: epath.PathLike,
      member: str) -> Iterator[tuple[int, dict[str, bytes]]]:
    with epath.Path(archive).open('rb') as f, zipfile.ZipFile(f) as z:
      with z.open(member) as lines:
        # Binary lines split at b'\n' only, so no byte is changed.
        for i, line in enumerate(lines):
          yield i, {'text': line}


def _manual_archive(
    dl_manager: tfds.download.DownloadManager) -> epath.Path | None:
  """The archive in the manual dir, or None."""
  try:
    manual_dir = dl_manager.manual_dir
  except AssertionError:  # TFDS's signal for a missing or empty manual dir.
    return None
  path = manual_dir / ARCHIVE
  return path if path.exists() else None


def load_splits(config: Any) -> tuple[bytes, bytes]:
  """(train, eval) bytes, building the TFDS records first if needed."""
  local_dir = config.dataset.local_dir
  if local_dir:
    # Fail here rather than fall back to downloading: local_dir means offline.
    archive = os.path.join(local_dir, ARCHIVE)
    if not os.path.exists(archive):
      raise errors.DataFileError(f'{archive}: file not found')
  builder = WikiText103(data_dir=config.dataset.tfds_data_dir or None)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=local_dir or None))
  return tuple(
      language_model.tfds_text(builder.as_dataset(split, shuffle_files=False))
      for split in (TRAIN_SPLIT, EVAL_SPLIT))


def create_pipeline(config: Any, *, process_index: int,
                    process_count: int) -> in_memory.InMemoryPipeline:
  """The WikiText-103 pipeline of a run config."""
  train, evaluation = load_splits(config)
  return language_model.create_pipeline(
      config, train, evaluation, process_index=process_index,
      process_count=process_count)
