"""CIFAR-10: offline from a zip of JPEG images, or from TFDS.

The offline archive ``local_dir/cifar10-jpg.zip`` holds
``{train,test}/<class>/<name>.jpg``; the class folder names, sorted, give
the label order (the standard one for CIFAR-10's class names). Its 60,000
images are decoded into memory once with Pillow (about 10 s on one core).

Batches carry uint8 images. On the device, training images are padded by 4
pixels, randomly cropped back to 32x32 and randomly flipped; all images are
normalized per channel.
"""

import io
import os
from typing import Any
import zipfile

import jax
import numpy as np
from PIL import Image
from PIL import JpegImagePlugin

from rigl_jax import errors
from rigl_jax.data import base
from rigl_jax.data import image_ops
from rigl_jax.data import pipeline
from rigl_jax.data import tfds_source

NUM_CLASSES = 10
ARCHIVE = 'cifar10-jpg.zip'
IMAGE_SHAPE = (32, 32, 3)
# Per-channel mean and standard deviation of the training images (0-255).
MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32) * 255
STD = np.array([0.2470, 0.2435, 0.2616], np.float32) * 255
PAD = 4
_SPLITS = ('train', 'test')

Examples = dict[str, np.ndarray]


def _list_members(
    path: str, archive: zipfile.ZipFile
) -> dict[str, dict[str, list[str]]]:
  """{split: {class: sorted member names}}, checking the layout."""
  members = {split: {} for split in _SPLITS}
  for name in archive.namelist():
    if name.endswith('/'):
      continue  # Folder entries.
    parts = name.split('/')
    if (
        len(parts) != 3
        or parts[0] not in members
        or not parts[2].lower().endswith(('.jpg', '.jpeg'))
    ):
      raise errors.DataFileError(
          f'{path}: unexpected entry {name!r}; expected only '
          '{train,test}/<class>/<name>.jpg'
      )
    members[parts[0]].setdefault(parts[1], []).append(name)
  classes = sorted(members['train'])
  if len(classes) != NUM_CLASSES or sorted(members['test']) != classes:
    raise errors.DataFileError(
        f'{path}: expected the same {NUM_CLASSES} class folders under train/ '
        f'and test/, found {classes} and {sorted(members["test"])}'
    )
  return {
      split: {c: sorted(names) for c, names in by_class.items()}
      for split, by_class in members.items()
  }


def _decode(path: str, name: str, blob: bytes) -> np.ndarray:
  """uint8 [32, 32, 3] pixels of one JPEG member."""
  try:
    # The JPEG plugin directly: Image.open's format probing costs more than
    # decoding an image this small.
    with JpegImagePlugin.JpegImageFile(io.BytesIO(blob)) as image:
      if image.mode != 'RGB':
        image = image.convert('RGB')
      pixels = np.frombuffer(image.tobytes(), np.uint8)
      size = image.size
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    raise errors.DataFileError(
        f'{path}: {name} is not a {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} RGB JPEG '
        f'image: {e}'
    ) from None
  if size != IMAGE_SHAPE[:2]:
    raise errors.DataFileError(
        f'{path}: {name} is not a {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]} RGB JPEG '
        f'image: it is {size[0]}x{size[1]}'
    )
  return pixels.reshape(IMAGE_SHAPE)


def load_local(local_dir: str) -> dict[str, Examples]:
  """{'train', 'test'}: {'inputs': uint8 [N, 32, 32, 3], 'labels': int32 [N]}.

  Raises:
    DataFileError: naming the archive (and member) when it is missing,
      corrupt, or not laid out as ``{train,test}/<class>/<name>.jpg``.
  """
  path = os.path.join(local_dir, ARCHIVE)
  try:
    with zipfile.ZipFile(path) as archive:
      members = _list_members(path, archive)
      splits = {}
      for split, by_class in members.items():
        classes = sorted(by_class)
        names = [n for c in classes for n in by_class[c]]
        images = np.empty((len(names),) + IMAGE_SHAPE, np.uint8)
        for i, name in enumerate(names):
          images[i] = _decode(path, name, archive.read(name))
        labels = [i for i, c in enumerate(classes) for _ in by_class[c]]
        splits[split] = {
            'inputs': images,
            'labels': np.asarray(labels, np.int32),
        }
  except FileNotFoundError:
    raise errors.DataFileError(f'{path}: file not found') from None
  except (OSError, zipfile.BadZipFile, EOFError) as e:
    # Includes CRC errors of single members, which name the member.
    raise errors.DataFileError(
        f'{path}: not a readable zip archive: {e}'
    ) from None
  return splits


def load_tfds_split(split: str, data_dir: str) -> Examples:
  """The same arrays from ``tfds.data_source('cifar10')``."""
  return tfds_source.read_image_classification('cifar10', split, data_dir)


def example_spec(dataset_config: Any) -> dict[str, jax.ShapeDtypeStruct]:
  """The features of one example in a batch."""
  del dataset_config
  return {
      'inputs': jax.ShapeDtypeStruct(IMAGE_SHAPE, np.uint8),
      'labels': jax.ShapeDtypeStruct((), np.int32),
  }


def augment(rng: jax.Array, images: jax.Array) -> jax.Array:
  """Padded random crop and random flip, independently per image."""
  crop_rng, flip_rng = jax.random.split(rng)
  images = image_ops.random_crop_with_padding(crop_rng, images, PAD)
  return image_ops.random_flip_left_right(flip_rng, images)


def preprocess_on_device(
    batch: dict[str, jax.Array], rng: jax.Array, train: bool
) -> dict[str, jax.Array]:
  """Augments training images; normalizes all of them to float32."""
  images = batch['inputs']
  if train:
    images = augment(rng, images)
  return {**batch, 'inputs': image_ops.normalize(images, MEAN, STD)}


def create_pipeline(
    config: Any, *, process_index: int, process_count: int
) -> pipeline.Pipeline:
  """The CIFAR-10 pipeline of a run config."""
  local_dir = config.dataset.local_dir
  if local_dir:
    splits = load_local(local_dir)
  else:
    splits = {
        s: load_tfds_split(s, config.dataset.tfds_data_dir) for s in _SPLITS
    }
  return pipeline.Pipeline(
      train=pipeline.in_memory(splits['train']),
      eval=pipeline.in_memory(splits['test']),
      global_batch_size=config.batch_size,
      eval_batch_size=config.eval_batch_size,
      seed=config.seed,
      process_index=process_index,
      process_count=process_count,
      num_workers=config.dataset.num_workers,
  )


DATASET = base.Dataset(
    name='cifar10',
    task='classification',
    num_classes=NUM_CLASSES,
    input_shape=IMAGE_SHAPE,
    input_dtype=np.float32,
    # The training set fits in device memory (147 MB).
    in_memory=True,
    create_pipeline=create_pipeline,
    example_spec=example_spec,
    preprocess_on_device=preprocess_on_device,
)
