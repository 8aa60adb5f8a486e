"""Small data sets and configs that tests write and run themselves."""

import glob
import gzip
import io
import json
import os
import struct
import subprocess
import sys
from typing import Any
import zipfile

import numpy as np
from PIL import Image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(REPO_ROOT, '..', 'shared', 'data')


def write_idx(path: str, array: np.ndarray) -> None:
  """Writes ``array`` (uint8) as a gzipped or raw IDX file."""
  array = np.asarray(array, np.uint8)
  header = bytes([0, 0, 0x08, array.ndim]) + b''.join(
      int(d).to_bytes(4, 'big') for d in array.shape
  )
  opener = gzip.open if path.endswith('.gz') else open
  with opener(path, 'wb') as f:
    f.write(header + array.tobytes())


def jpeg(pixels: np.ndarray, quality: int = 95) -> bytes:
  """JPEG bytes of uint8 [H, W, 3] pixels."""
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(pixels, np.uint8)).save(
      buffer, format='JPEG', quality=quality
  )
  return buffer.getvalue()


def write_tiny_mnist(
    directory: str, num_train: int, num_test: int, rng: np.random.Generator
) -> None:
  """IDX files of noisy 28x28 images whose bright row block is the label."""
  for prefix, n in (('train', num_train), ('t10k', num_test)):
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, label in enumerate(labels):
      images[i, 2 * label : 2 * label + 3, 4:24] = 250
    write_idx(os.path.join(directory, f'{prefix}-images-idx3-ubyte.gz'), images)
    write_idx(os.path.join(directory, f'{prefix}-labels-idx1-ubyte.gz'), labels)


def tiny_mnist_overrides(local_dir: str) -> dict[str, Any]:
  """Overrides that shrink configs/mnist_lenet300.py to seconds."""
  return {
      'dataset.local_dir': local_dir,
      'batch_size': 32,
      'eval_batch_size': 64,
      'num_train_steps': 12,
      'mask_update.interval': 3,
      'mask_update.end_step': 9,
      'pruning.begin_step': 2,
      'pruning.end_step': 8,
      'pruning.frequency': 2,
      'lr_schedule.boundaries': (8,),
      'log_every_steps': 4,
      'eval_every_steps': 6,
      'checkpoint_every_steps': 6,
  }


def set_flags(overrides: dict[str, Any]) -> list[str]:
  """``--set=key=value`` flags of scripts/sweep.py for ``overrides``."""
  return [
      f'--set={k}={v!r}' if isinstance(v, tuple) else f'--set={k}={v}'
      for k, v in overrides.items()
  ]


def tiny_mnist_config(local_dir: str, **overrides: Any):
  """configs/mnist_lenet300.py with tiny sizes and ``overrides``."""
  from rigl_jax.training import config as run_config  # pylint: disable=g-import-not-at-top

  config = run_config.load(
      os.path.join(REPO_ROOT, 'configs', 'mnist_lenet300.py')
  )
  return run_config.set_values(
      config, {**tiny_mnist_overrides(local_dir), **overrides}
  )


def main_command(
    workdir: str,
    overrides: dict[str, Any],
    config: str = 'configs/mnist_lenet300.py',
) -> list[str]:
  """``python -m rigl_jax.main`` with ``--config.key=value`` flags."""
  flags = [
      f'--config.{k}={v!r}' if isinstance(v, tuple) else f'--config.{k}={v}'
      for k, v in overrides.items()
  ]
  return [
      sys.executable,
      '-m',
      'rigl_jax.main',
      f'--config={config}',
      f'--workdir={workdir}',
  ] + flags


def run_main(
    workdir: str,
    overrides: dict[str, Any],
    env: dict[str, str] | None = None,
    config: str = 'configs/mnist_lenet300.py',
    timeout: int = 600,
) -> subprocess.CompletedProcess:
  """Runs ``python -m rigl_jax.main`` with ``--config.key=value`` flags."""
  return subprocess.run(
      main_command(workdir, overrides, config),
      cwd=REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=timeout,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3', **(env or {})},
      check=False,
  )


# What the pure-JAX packages (rigl_jax.sparse, rigl_jax.analysis) must run
# without.
RUNNER_AND_TENSORFLOW = (
    'tensorflow',
    'tensorflow_datasets',
    'clu',
    'grain',
    'ml_collections',
    'rigl_jax.data',
    'rigl_jax.training',
    'rigl_jax.models',
)


def run_without(
    blocked: tuple[str, ...], body: str
) -> subprocess.CompletedProcess:
  """Runs the Python ``body`` in a subprocess where ``blocked`` cannot be imported."""
  prelude = (
      'import sys\n'
      f'for name in {blocked!r}:\n'
      '  sys.modules[name] = None  # Any import of these now fails.\n'
  )
  return subprocess.run(
      [sys.executable, '-c', prelude + body],
      capture_output=True,
      text=True,
      timeout=300,
      check=False,
      cwd=REPO_ROOT,
  )


def load_checkpoint(workdir: str, step: int) -> dict[str, Any]:
  """The train state saved at ``step`` as nested dicts of numpy arrays.

  Leaves come back as numpy arrays, so a state saved on any number of
  devices loads in the single-device test process.
  """
  from rigl_jax.training import checkpoints  # pylint: disable=g-import-not-at-top

  return checkpoints.read_as_saved(
      os.path.join(workdir, 'checkpoints', str(step), 'state')
  )


def read_scalars(workdir: str) -> dict[str, dict[int, float]]:
  """{tag: {step: value}} of the scalars in ``workdir``'s event files."""
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top

  scalars = {}
  for path in sorted(glob.glob(os.path.join(workdir, 'events.out.tfevents*'))):
    with open(path, 'rb') as f:
      content = f.read()
    position = 0
    while position < len(content):  # Records: length, crc, data, crc.
      (length,) = struct.unpack('<Q', content[position : position + 8])
      event = event_pb2.Event.FromString(
          content[position + 12 : position + 12 + length]
      )
      position += 12 + length + 4
      for value in event.summary.value:
        if value.HasField('simple_value'):
          scalars.setdefault(value.tag, {})[event.step] = value.simple_value
  return scalars


# CIFAR-10 stand-in: class folders written in this (unsorted) order; labels
# follow the sorted names. Each class is one flat colour.
CIFAR10_CLASSES = (
    'truck',
    'airplane',
    'ship',
    'automobile',
    'bird',
    'cat',
    'deer',
    'dog',
    'frog',
    'horse',
)
CIFAR10_COUNTS = {'train': 3, 'test': 2}


def cifar10_color(label: int) -> np.ndarray:
  return np.array([25 * label, 250 - 25 * label, 128], np.uint8)


def write_zip(path, entries: dict[str, bytes]) -> None:
  with zipfile.ZipFile(path, 'w') as archive:
    for name, data in entries.items():
      archive.writestr(name, data)


def cifar10_entries() -> dict[str, bytes]:
  """{train,test}/<class>/NNNN.jpg of one colour per class."""
  entries = {}
  for split, count in CIFAR10_COUNTS.items():
    for name in CIFAR10_CLASSES:
      image = np.broadcast_to(
          cifar10_color(sorted(CIFAR10_CLASSES).index(name)), (32, 32, 3)
      )
      for i in range(count):
        entries[f'{split}/{name}/{i:04d}.jpg'] = jpeg(image, 100)
  return entries


def write_cifar10_zip(directory) -> str:
  """A small cifar10-jpg.zip in ``directory``; returns the directory."""
  write_zip(os.path.join(directory, 'cifar10-jpg.zip'), cifar10_entries())
  return str(directory)


def imagenet_records(n: int, seed: int = 0) -> list[dict[str, Any]]:
  """Records of random JPEGs of random sizes, as TFDS's data source holds."""
  rng = np.random.default_rng(seed)
  return [
      {
          'image': jpeg(
              rng.integers(
                  0,
                  256,
                  (int(rng.integers(24, 80)), int(rng.integers(24, 80)), 3),
              )
          ),
          'label': np.int64(rng.integers(0, 1000)),
      }
      for _ in range(n)
  ]


# WikiText-103 stand-in: split -> text.
WIKITEXT = {
    'train': ' = Valkyria Chronicles = \n \n Senjō no Valkyria 3 . \r\n' * 6,
    'validation': ' = Robert Boulter = \n \n An English actor . \n' * 2,
    'test': ' = Test = \n',
}


def write_wikitext(directory, members=None) -> str:
  """wikitext-103-raw-v1.zip of ``WIKITEXT`` (or ``members``); its path."""
  from rigl_jax.data import wikitext103  # pylint: disable=g-import-not-at-top

  path = os.path.join(directory, wikitext103.ARCHIVE)
  members = members or {
      wikitext103.MEMBERS[s]: text.encode('utf-8')
      for s, text in WIKITEXT.items()
  }
  write_zip(path, members)
  return path


def method_config_error(method: str, key: str, value: Any) -> str:
  """The one-line error of ``config.<method>.<key> = value`` (the method's
  own block), as ``main`` would print it."""
  import pytest  # pylint: disable=g-import-not-at-top
  from rigl_jax.sparse import methods  # pylint: disable=g-import-not-at-top
  from rigl_jax.training import config as run_config  # pylint: disable=g-import-not-at-top

  config = run_config.base_config()
  config.method = method
  config[method][key] = value
  with pytest.raises(run_config.ConfigError) as error:
    with run_config.as_config_errors():
      methods.from_config(config)
  message = str(error.value)
  assert '\n' not in message
  return message


def train_method_from_command_line(
    workdir: str, mnist_dir: str, method: str
) -> dict[str, Any]:
  """results.json of ``method`` on the MNIST smoke config, trained by
  ``python -m rigl_jax.main`` (which must exit 0)."""
  process = run_main(
      workdir,
      {'method': method, 'dataset.local_dir': mnist_dir},
      config='configs/mnist_lenet300.py:smoke',
  )
  assert process.returncode == 0, process.stderr[-3000:]
  with open(os.path.join(workdir, 'results.json')) as f:
    results = json.load(f)
  assert np.isfinite(results['eval']['loss'])
  assert results['topology']['method'] == method
  return results
