r"""MobileNet v1 on ImageNet as in the RigL paper (5x training multiplier).

Batch 4096, 32,000 steps at 1x (about 100 epochs), so 160,000 with the
paper's 5x multiplier; SGD with Nesterov momentum 0.9, L2 4e-5, label
smoothing 0.1; learning rate warmed up to 1.6 over 8 epochs, then x0.1 at
epochs 40, 75 and 95 (all anchors scale with the multiplier). The first
layer and every depthwise convolution stay dense under every distribution.
RigL: ΔT=100, α=0.3 cosine, T_end=25,000 (x5). The paper's big-sparse
variant is ``--config.model.width=1.98 --config.sparsity=0.75``.

  python -m rigl_jax.main --config=configs/imagenet_mobilenet_v1.py \
      --workdir=gs://BUCKET/mbv1 --config.dataset.tfds_data_dir=DIR

Expected result (paper, not run here): RigL 5x at 75% sparsity within about
2 points of the dense model's 72% top-1.

``:smoke`` shrinks it to two steps of a few blocks at 32x32 for tests.
"""

import ml_collections

from rigl_jax import run_config

STEPS_PER_EPOCH = 1_281_167 / 4096


def epochs(n: float) -> int:
  return int(round(n * STEPS_PER_EPOCH))


def base_mobilenet_config(model_name: str) -> ml_collections.ConfigDict:
  """Settings shared by both MobileNets."""
  config = run_config.base_config()
  config.method = 'rigl'
  config.sparsity = 0.75
  config.distribution = 'uniform'
  config.dense_layers = ('^stem/', 'depthwise')
  config.training_multiplier = 5.0
  config.dataset.name = 'imagenet2012'
  config.dataset.image_size = 224
  config.model.name = model_name

  config.batch_size = 4096
  config.eval_batch_size = 1024
  config.num_train_steps = 32_000
  config.label_smoothing = 0.1
  config.optimizer.name = 'momentum'
  config.optimizer.learning_rate = 1.6
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = True
  config.optimizer.l2 = 4e-5
  config.lr_schedule.name = 'piecewise'
  config.lr_schedule.warmup_steps = epochs(8)
  config.lr_schedule.boundaries = (epochs(40), epochs(75), epochs(95))
  config.lr_schedule.decay_factor = 0.1

  config.mask_update.interval = 100
  config.mask_update.end_step = 25_000
  config.mask_update.drop_fraction = 0.3
  config.mask_update.schedule = 'cosine'
  config.pruning.begin_step = 10_000
  config.pruning.end_step = 25_000
  config.pruning.frequency = 500

  config.log_every_steps = 100
  config.eval_every_steps = 2_000
  config.checkpoint_every_steps = 1_000
  return config


def smoke(config: ml_collections.ConfigDict) -> None:
  """Two steps at 32x32 with a few blocks (tests compile fast)."""
  run_config.shrink_for_smoke_test(config)
  config.dataset.image_size = 32
  config.model.width = 0.25
  if config.model.name == 'mobilenet_v1':
    config.model.options.blocks = ((64, 1), (128, 2), (256, 2), (1024, 2))
  else:
    # (expansion, channels, repeats, stride) per stage.
    config.model.options.stages = ((1, 16, 1, 1), (6, 24, 1, 2),
                                   (6, 64, 1, 2))


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """The MobileNet v1 config; ``arg``: 'smoke' and/or key=value overrides."""
  return run_config.apply_arg(base_mobilenet_config('mobilenet_v1'), arg,
                              {'smoke': smoke})
