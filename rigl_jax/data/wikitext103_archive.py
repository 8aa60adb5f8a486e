"""The raw WikiText-103 release: where it comes from and how it is laid out.

``wikitext-103-raw-v1.zip`` holds ``wikitext-103-raw/wiki.{train,valid,
test}.raw``. Both the input pipeline and the TFDS builder read it.
"""

import zipfile

from etils import epath

from rigl_jax import errors

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


def check(path: epath.PathLike) -> None:
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


def read_split(path: epath.PathLike, split: str) -> bytes:
  """The bytes of one split's file in the archive."""
  check(path)
  try:
    with epath.Path(path).open('rb') as f, zipfile.ZipFile(f) as archive:
      return archive.read(MEMBERS[split])
  except (OSError, zipfile.BadZipFile) as e:
    raise errors.DataFileError(
        f'{path}: cannot read {MEMBERS[split]}: {e}'
    ) from None
