"""Reader for the IDX files MNIST is distributed in (optionally gzipped)."""

import gzip
import os
import zlib

import numpy as np

from rigl_jax import errors

# The third byte of the magic number gives the element type.
_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: '>i2',
    0x0C: '>i4',
    0x0D: '>f4',
    0x0E: '>f8',
}


DataFileError = errors.DataFileError


def read_idx(path: str) -> np.ndarray:
  """Reads an IDX file (``.gz`` or raw) into a numpy array.

  Raises:
    DataFileError: naming ``path`` when it is missing, truncated or corrupt.
  """
  if not os.path.exists(path):
    raise DataFileError(f'{path}: file not found')
  try:
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
      data = f.read()
  # zlib.error: damaged compressed data; EOFError: a gzip cut short;
  # BadGzipFile: not gzip at all.
  except (EOFError, zlib.error, gzip.BadGzipFile) as e:
    raise DataFileError(
        f'{path}: cannot be read as gzip (corrupt or truncated; download it '
        f'again): {e}'
    ) from None
  except OSError as e:
    raise DataFileError(
        f'{path}: cannot be read as '
        f'{"gzip" if path.endswith(".gz") else "IDX"}: {e.strerror or e}'
    ) from None
  if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
    raise DataFileError(
        f'{path}: not an IDX file (bad magic number '
        f'{data[:4].hex() or "<empty>"})'
    )
  ndim = data[3]
  header = 4 + 4 * ndim
  if len(data) < header:
    raise DataFileError(f'{path}: truncated header')
  shape = tuple(
      int.from_bytes(data[4 + 4 * i : 8 + 4 * i], 'big') for i in range(ndim)
  )
  dtype = np.dtype(_DTYPES[data[2]])
  expected = int(np.prod(shape)) * dtype.itemsize
  if len(data) - header != expected:
    raise DataFileError(
        f'{path}: expected {expected} bytes of data for shape '
        f'{shape}, found {len(data) - header} (truncated or '
        'corrupt)'
    )
  return np.frombuffer(data, dtype, offset=header).reshape(shape)
