r"""ResNet-50 on ImageNet: the RigL paper's Table 2 setting.

The ImageNet recipe of configs/_imagenet_common.py (batch 4096, 32,000
steps, Nesterov momentum, label smoothing 0.1, RigL ΔT=100, α=0.3 cosine,
T_end=25,000) with L2 1e-4 and the learning rate warmed up to 1.6 over 5
epochs, then x0.1 at epochs 30, 70 and 90. Under 'uniform' the first layer
stays dense; under 'erk' every layer is sparsified.

Values the paper does not state, and their source:
- Nesterov momentum and label smoothing 0.1: reference code
  (rigl/imagenet_resnet/imagenet_train_eval.py);
- ERK sparsifies the stem too: reference README and checkpoints (ERK runs
  use ``first_layer_sparsity=-1``, uniform ones keep it dense);
- Small-Dense sized by storage (mask bits included) against the run's
  distribution: the reference's counting notebook (widths 0.465 / 0.34 at
  80 / 90% ERK; 0.46 / 0.339 here).

ImageNet must be prepared for TFDS first, as ArrayRecord files (manual
download; ``python scripts/prepare_tfds.py --dataset=imagenet2012``, see
docs/install.md); training then reads them without TensorFlow:

  python -m rigl_jax.main --config=configs/imagenet_resnet50.py \
      --workdir=gs://BUCKET/resnet50_rigl --config.dataset.tfds_data_dir=DIR

Expected result (the paper's Table 2, not run here): RigL at 80% sparsity,
uniform, 1x reaches about 74.6% top-1; ERK about 75.1%; dense 76.8%.

``:smoke`` shrinks it to two steps of a one-block-per-stage ResNet at
32x32 for tests.
"""

import ml_collections

from rigl_jax.training import config as run_config

imagenet_common = run_config.load_sibling(__file__, '_imagenet_common')


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """The ResNet-50 config; ``arg``: 'smoke' and/or key=value overrides."""
  config = imagenet_common.imagenet_config('resnet50')
  config.sparsity = 0.8
  config.distribution = 'uniform'
  config.optimizer.l2 = 1e-4
  config.lr_schedule.warmup_steps = imagenet_common.epochs(5)
  config.lr_schedule.boundaries = tuple(
      imagenet_common.epochs(e) for e in (30, 70, 90)
  )
  return run_config.apply_arg(config, arg, {'smoke': smoke})


def smoke(config: ml_collections.ConfigDict) -> None:
  """Two steps at 32x32 with one bottleneck per stage (tests compile fast)."""
  imagenet_common.smoke(config)
  config.model.width = 0.125
  config.model.options.stage_sizes = (1, 1, 1, 1)
