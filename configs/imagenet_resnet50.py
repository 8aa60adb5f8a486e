r"""ResNet-50 on ImageNet: the RigL paper's Table 2 setting.

Batch 4096 for 32,000 steps (about 100 epochs), SGD with Nesterov momentum
0.9, L2 1e-4, label smoothing 0.1, learning rate warmed up linearly to 1.6
over 5 epochs then x0.1 at epochs 30, 70 and 90. RigL: ΔT=100, α=0.3 with
cosine decay, T_end=25,000. Under 'uniform' the first layer stays dense;
under 'erk' every layer is sparsified. Gradual pruning runs from step 10,000
to 25,000 every 500 steps (Gale et al. 2019's schedule at batch 4096).

ImageNet must be prepared for TFDS first (manual download):

  python -m rigl_jax.main --config=configs/imagenet_resnet50.py \
      --workdir=gs://BUCKET/resnet50_rigl --config.dataset.tfds_data_dir=DIR

Expected result (the paper's Table 2, not run here): RigL at 80% sparsity,
uniform, 1x reaches about 74.6% top-1; ERK about 75.1%; dense 76.8%.

``:smoke`` shrinks it to two steps of a one-block-per-stage ResNet at
32x32 for tests.
"""

import ml_collections

from rigl_jax import run_config

STEPS_PER_EPOCH = 1_281_167 / 4096


def epochs(n: float) -> int:
  return int(round(n * STEPS_PER_EPOCH))


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """The ResNet-50 config; ``arg``: 'smoke' and/or key=value overrides."""
  config = run_config.base_config()
  config.method = 'rigl'
  config.sparsity = 0.8
  config.distribution = 'uniform'
  config.uniform_dense_layers = ('^stem/',)
  config.dataset.name = 'imagenet2012'
  config.dataset.image_size = 224
  config.model.name = 'resnet50'

  config.batch_size = 4096
  config.eval_batch_size = 1024
  config.num_train_steps = 32_000
  config.label_smoothing = 0.1
  config.optimizer.name = 'momentum'
  config.optimizer.learning_rate = 1.6
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = True
  config.optimizer.l2 = 1e-4
  config.lr_schedule.name = 'piecewise'
  config.lr_schedule.warmup_steps = epochs(5)
  config.lr_schedule.boundaries = (epochs(30), epochs(70), epochs(90))
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
  return run_config.apply_arg(config, arg, {'smoke': smoke})


def smoke(config: ml_collections.ConfigDict) -> None:
  """Two steps at 32x32 with one bottleneck per stage (tests compile fast)."""
  run_config.shrink_for_smoke_test(config)
  config.dataset.image_size = 32
  config.model.width = 0.125
  config.model.options.stage_sizes = (1, 1, 1, 1)
