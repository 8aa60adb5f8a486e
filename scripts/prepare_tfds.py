r"""Prepares a TFDS data set as ArrayRecord files, which runs read without TF.

Needs the ``prepare`` extra (TensorFlow): ``pip install -e '.[prepare]'``.
Run it once per data set, on any machine, then point
``config.dataset.tfds_data_dir`` at the same ``--data_dir``:

  python scripts/prepare_tfds.py --dataset=cifar10 --data_dir=/data/tfds
  # ImageNet: the two ILSVRC2012 tars in --manual_dir (about 150 GB out).
  python scripts/prepare_tfds.py --dataset=imagenet2012 \
      --data_dir=/data/tfds --manual_dir=/data/downloads
  # WikiText-103 (raw), through rigl_jax's own builder.
  python scripts/prepare_tfds.py --dataset=wikitext103 --data_dir=/data/tfds
"""

from collections.abc import Sequence

from absl import app
from absl import flags

from rigl_jax import command_line
from rigl_jax import errors
from rigl_jax.data import tfds_source

_DATASET = flags.DEFINE_string(
    'dataset',
    None,
    'TFDS name (mnist, cifar10, tiny_shakespeare, '
    'imagenet2012) or wikitext103.',
)
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data dir.')
_MANUAL_DIR = flags.DEFINE_string(
    'manual_dir', None, 'Where manually downloaded archives are.'
)
flags.mark_flag_as_required('dataset')


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  tfds = tfds_source.import_tfds()
  try:
    data_dir = tfds_source.prepare(
        _DATASET.value, _DATA_DIR.value, _MANUAL_DIR.value
    )
  except tfds.core.DatasetNotFoundError:
    raise errors.FlagError(
        f'--dataset={_DATASET.value}: TFDS has no such data set (e.g. '
        'mnist, cifar10, tiny_shakespeare, imagenet2012, or wikitext103)'
    ) from None
  print(f'{_DATASET.value}: prepared in {data_dir}')


if __name__ == '__main__':
  command_line.run(main, 'prepare_tfds')
