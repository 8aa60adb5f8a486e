r"""Repacks the CIFAR-10 JPEG zip for carrying, and back, with the same bytes.

  python scripts/cifar10_archive.py pack ../shared/data/cifar10/cifar10-jpg.zip \
      cifar10.tar.xz
  python scripts/cifar10_archive.py unpack cifar10.tar.xz DIR/cifar10-jpg.zip

The zip stores 60,000 small JPEGs one by one (62 MiB); an xz tar of the same
files compresses their shared headers together (18 MiB), which matters
where what a machine receives is limited. ``unpack`` writes a zip that the
CIFAR-10 pipeline reads, and checks every member against the CRC-32 that
the original zip recorded (kept in the tar as MANIFEST.json), so the
decoded pixels are the original zip's.
"""

import io
import json
import os
import sys
import tarfile
import zipfile
import zlib
from typing import NoReturn

MANIFEST = 'MANIFEST.json'


def pack(zip_path: str, tar_path: str) -> None:
  """The zip's files and their CRC-32s as an xz tar."""
  with (
      zipfile.ZipFile(zip_path) as archive,
      tarfile.open(tar_path, 'w:xz', preset=9) as tar,
  ):
    members = [i for i in archive.infolist() if not i.is_dir()]
    manifest = {i.filename: i.CRC for i in members}
    blob = json.dumps(manifest).encode()
    info = tarfile.TarInfo(MANIFEST)
    info.size = len(blob)
    tar.addfile(info, _reader(blob))
    for member in members:
      data = archive.read(member)
      info = tarfile.TarInfo(member.filename)
      info.size = len(data)
      tar.addfile(info, _reader(data))


def unpack(tar_path: str, zip_path: str) -> None:
  """A zip of the tar's files, each checked against the original's CRC-32."""
  os.makedirs(os.path.dirname(os.path.abspath(zip_path)), exist_ok=True)
  partial = zip_path + '.partial'
  with (
      tarfile.open(tar_path) as tar,
      zipfile.ZipFile(partial, 'w', zipfile.ZIP_STORED) as archive,
  ):
    manifest = None
    written = 0
    for member in tar:
      data = tar.extractfile(member).read()
      if member.name == MANIFEST:
        manifest = json.loads(data)
        continue
      if manifest is None:
        raise ValueError(f'{tar_path}: {MANIFEST} must come first')
      if manifest.get(member.name) != zlib.crc32(data):
        raise ValueError(f'{tar_path}: {member.name} differs from the zip')
      archive.writestr(member.name, data)
      written += 1
    if manifest is None or written != len(manifest):
      raise ValueError(
          f'{tar_path}: holds {written} of the {len(manifest or ())} files'
      )
  os.replace(partial, zip_path)


def _reader(data: bytes) -> io.BytesIO:
  return io.BytesIO(data)


def _fail(message: str, exit_code: int) -> NoReturn:
  """One line on stderr and an exit, as the other command lines."""
  print(f'cifar10_archive: {" ".join(message.split())}', file=sys.stderr)
  sys.exit(exit_code)


def main(argv: list[str]) -> None:
  if len(argv) != 4 or argv[1] not in ('pack', 'unpack'):
    _fail(
        'usage: python scripts/cifar10_archive.py pack ZIP TAR | unpack TAR '
        'ZIP',
        2,
    )
  try:
    (pack if argv[1] == 'pack' else unpack)(argv[2], argv[3])
  except (OSError, ValueError, tarfile.TarError, zipfile.BadZipFile) as e:
    # A missing or damaged archive: which one, and why.
    _fail(f'{argv[1]} {argv[2]}: {type(e).__name__}: {e}', 1)
  print(f'{argv[1]}ed {argv[2]} into {argv[3]}')


if __name__ == '__main__':
  main(sys.argv)
