r"""MobileNet v1 on ImageNet as in the RigL paper (5x training multiplier).

The ImageNet recipe of configs/_imagenet_common.py at the paper's 5x
multiplier (160,000 steps), with L2 1e-4 (the paper's, for every ImageNet
run) on every kernel but the depthwise ones, and the learning rate warmed
up to 1.6 over 8 epochs, then x0.1 at epochs 40, 75 and 95 (every anchor
scales with the multiplier). The first layer and every depthwise
convolution stay dense under every distribution.

Values the paper does not state, and their source:
- depthwise kernels dense and not regularized: reference code
  (mobilenetv1_model.py builds them unmasked, without a regularizer);
- warm-up of 8 epochs and boundaries at epochs 40, 75, 95: the reference
  code's MobileNet schedule exactly (imagenet_train_eval.py, LR_SCHEDULE
  ``[(1.0, 8), (0.1, 40), (0.01, 75), (0.001, 95), (.0003, 120)]``, every
  epoch times the multiplier; its epoch-120 step lies past the end of
  training at any multiplier, since 32,000 steps are about 100 epochs);
- Small-Dense sized against an ERK model whose depthwise kernels are sparse
  too (``small_dense.layer_sparsity``): the reference's counting notebook,
  whose widths (0.47 / 0.353 / 0.285 / 0.204 at 75 / 85 / 90 / 95%) this
  reproduces.

The paper's Big-Sparse model (Figure 3-right) is
``--config.model.width=1.98 --config.sparsity=0.75`` with its FLOPs
compared with the width-1 dense model (``model.reference_width=1.0``,
which changes only the reported ratios: the model trains with the
per-layer sparsities of its own layers, as in the reference code).

  python -m rigl_jax.main --config=configs/imagenet_mobilenet_v1.py \
      --workdir=gs://BUCKET/mbv1 --config.dataset.tfds_data_dir=DIR

Expected result (paper, not run here): RigL 5x at 75% sparsity within about
2 points of the dense model's 72% top-1.

``:smoke`` shrinks it to two steps of a few blocks at 32x32 for tests.
"""

import ml_collections

from rigl_jax.training import config as run_config

imagenet_common = run_config.load_sibling(__file__, '_imagenet_common')


def base_mobilenet_config(model_name: str) -> ml_collections.ConfigDict:
  """Settings shared by both MobileNets."""
  config = imagenet_common.imagenet_config(model_name)
  config.sparsity = 0.75
  config.distribution = 'uniform'
  config.layer_sparsity = (('^stem/', 'dense'), ('depthwise', 'dense'))
  config.training_multiplier = 5.0
  config.optimizer.l2 = 1e-4
  config.optimizer.l2_exclude = ('depthwise',)
  config.small_dense.layer_sparsity = (('^stem/', 'dense'),)
  config.lr_schedule.warmup_steps = imagenet_common.epochs(8)
  config.lr_schedule.boundaries = tuple(
      imagenet_common.epochs(e) for e in (40, 75, 95)
  )
  return config


def smoke(config: ml_collections.ConfigDict) -> None:
  """Two steps at 32x32 with a few blocks (tests compile fast)."""
  imagenet_common.smoke(config)
  config.model.width = 0.25
  if config.model.name == 'mobilenet_v1':
    config.model.options.blocks = ((64, 1), (128, 2), (256, 2), (1024, 2))
  else:
    # (expansion, channels, repeats, stride) per stage.
    config.model.options.stages = ((1, 16, 1, 1), (6, 24, 1, 2), (6, 64, 1, 2))


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """The MobileNet v1 config; ``arg``: 'smoke' and/or key=value overrides."""
  return run_config.apply_arg(
      base_mobilenet_config('mobilenet_v1'), arg, {'smoke': smoke}
  )
