"""The ImageNet recipe the RigL paper shares across ResNet-50 and MobileNets.

Batch 4096 for 32,000 steps (about 100 epochs), SGD with Nesterov momentum
0.9, label smoothing 0.1, a peak learning rate of 1.6 (0.1 per 256 images)
after a linear warm-up, x0.1 at each boundary; RigL with ΔT=100 and α=0.3
(cosine) until T_end=25,000; gradual pruning from step 10,000 to 25,000
every 500 steps (Gale et al. 2019's schedule at batch 4096). The model
configs set the model, the warm-up and boundaries, L2 and the layers kept
dense.
"""

import ml_collections

from rigl_jax.training import config as run_config

STEPS_PER_EPOCH = 1_281_167 / 4096


def epochs(n: float) -> int:
  """Steps of ``n`` epochs at batch 4096."""
  return int(round(n * STEPS_PER_EPOCH))


def imagenet_config(model_name: str) -> ml_collections.ConfigDict:
  """The shared recipe for ``model_name``."""
  config = run_config.base_config()
  config.method = 'rigl'
  config.dataset.name = 'imagenet2012'
  config.dataset.image_size = 224
  # Streamed from TFDS's ArrayRecord files, decoded by Grain workers: set
  # num_workers to the host's spare cores.
  config.dataset.device_resident = False
  config.dataset.num_workers = 8
  config.model.name = model_name

  config.batch_size = 4096
  config.eval_batch_size = 1024
  config.num_train_steps = 32_000
  config.label_smoothing = 0.1
  config.optimizer.name = 'momentum'
  config.optimizer.learning_rate = 1.6
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = True
  config.lr_schedule.name = 'piecewise'
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
  """Two steps at 32x32 (the model configs also shrink the model)."""
  run_config.shrink_for_smoke_test(config)
  config.dataset.image_size = 32
  config.dataset.num_workers = 0
