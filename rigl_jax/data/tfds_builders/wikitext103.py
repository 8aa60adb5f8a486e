"""A TFDS builder of WikiText-103 (raw), for reading it through TFDS.

TFDS has no WikiText builder, so ``WikiText103`` builds the raw release into
TFDS records: one example per line (with its newline), in file order, so a
split's examples concatenated give back the file byte for byte. It
downloads the archive, or takes it from the manual dir when it is there.
Building writes about 0.5 GB under the TFDS data dir; in multi-host runs,
build once before launching. Needs ``pip install -e '.[prepare]'``.

Training does not need this module when ``config.dataset.local_dir`` holds
the archive (see ``rigl_jax.data.wikitext103``).
"""

from collections.abc import Iterator, Sequence
from typing import Any, Optional
import zipfile

from etils import epath
import tensorflow_datasets as tfds

from rigl_jax.data import wikitext103_archive

_CITATION = """@misc{merity2016pointer,
  title={Pointer Sentinel Mixture Models},
  author={Stephen Merity and Caiming Xiong and James Bradbury and
          Richard Socher},
  year={2016}, eprint={1609.07843}, archivePrefix={arXiv}}"""


class WikiText103(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """WikiText-103 raw text, one example per line, in file order."""

  # Not registered with TFDS (no import side effects); build it through
  # this class, e.g. ``WikiText103(data_dir=...).download_and_prepare()``.
  name = 'wikitext103'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Raw release, one example per line.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f'Optional: put {wikitext103_archive.ARCHIVE} (from '
      f'{wikitext103_archive.URL}) in the manual dir to build without '
      'network access.'
  )

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description='WikiText-103, raw (untokenized) release.',
        features=tfds.features.FeaturesDict({'text': tfds.features.Text()}),
        homepage=(
            'https://blog.salesforceairesearch.com/'
            'the-wikitext-long-term-dependency-language-modeling-'
            'dataset/'
        ),
        citation=_CITATION,
        # Keep file order: the splits are texts, not sets of examples.
        disable_shuffling=True,
    )

  def _split_generators(
      self, dl_manager: tfds.download.DownloadManager
  ) -> dict[str, Iterator[tuple[int, dict[str, bytes]]]]:
    archive = _manual_archive(dl_manager) or dl_manager.download(
        wikitext103_archive.URL
    )
    wikitext103_archive.check(archive)
    return {
        split: self._generate_examples(archive, member)
        for split, member in wikitext103_archive.MEMBERS.items()
    }

  def _generate_examples(
      self, archive: epath.PathLike, member: str
  ) -> Iterator[tuple[int, dict[str, bytes]]]:
    with epath.Path(archive).open('rb') as f, zipfile.ZipFile(f) as z:
      with z.open(member) as lines:
        # Binary lines split at b'\n' only, so no byte is changed.
        for i, line in enumerate(lines):
          yield i, {'text': line}


def _manual_archive(
    dl_manager: tfds.download.DownloadManager,
) -> Optional[epath.Path]:
  """The archive in the manual dir, or None."""
  try:
    manual_dir = dl_manager.manual_dir
  except AssertionError:  # TFDS's signal for a missing or empty manual dir.
    return None
  path = manual_dir / wikitext103_archive.ARCHIVE
  return path if path.exists() else None


def prepare(
    data_dir: Optional[str], manual_dir: Optional[str] = None
) -> WikiText103:
  """Builds the ArrayRecord files (a no-op once built); returns the builder."""
  builder = WikiText103(data_dir=data_dir or None, file_format='array_record')
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(
          manual_dir=manual_dir or None
      )
  )
  return builder


def data_source(split: str, data_dir: Optional[str]) -> Sequence[Any]:
  """Random access to one split's lines, building the records first."""
  return prepare(data_dir).as_data_source(split)
