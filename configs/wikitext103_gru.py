r"""Byte-level GRU language model on WikiText-103, as in the RigL paper.

Shared 128-dim embedding over 256 bytes, GRU with state 512, readout 256 and
128, logits through the embedding. Adam 7e-4, L2 5e-4, gradient values
clipped at 10, sequences of 512 bytes, batch 32, 200,000 steps. Uniform
sparsity over the GRU and readout kernels (the shared embedding stays
dense); RigL: α=0.1 cosine, ΔT=100, mask updates until the end. Pruning
from step 50,000 to 150,000 every 1,000 steps.

Values the paper does not state (the reference publishes no language-model
code), all guesses: the pruning schedule, keeping the shared embedding
dense, and the evaluation batch.

Runs read the raw release (wikitext-103-raw-v1.zip) from a folder:

  python -m rigl_jax.main --config=configs/wikitext103_gru.py \
      --workdir=/tmp/wt103 --config.dataset.local_dir=DIR_WITH_ZIP

Without ``local_dir`` they read the records of the project's TFDS builder
(``python scripts/prepare_tfds.py --dataset=wikitext103``, which downloads
the release).

Expected result (paper, not run here): validation bits per character of
dense and RigL at 75% sparsity within a few hundredths of each other.

``:smoke`` shrinks it to two steps on 16-byte sequences for tests.
"""

import ml_collections

from rigl_jax.training import config as run_config


def base_gru_config() -> ml_collections.ConfigDict:
  """The paper's GRU recipe, shared with the Tiny Shakespeare config."""
  config = run_config.base_config()
  config.method = 'rigl'
  config.sparsity = 0.75
  config.distribution = 'uniform'
  config.layer_sparsity = (('^embedding/', 'dense'),)
  config.dataset.name = 'wikitext103'
  config.dataset.sequence_length = 512
  config.model.name = 'gru_lm'

  config.batch_size = 32
  config.eval_batch_size = 64
  config.num_train_steps = 200_000
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 7e-4
  config.optimizer.l2 = 5e-4
  config.optimizer.grad_clip_value = 10.0
  config.lr_schedule.name = 'constant'

  config.mask_update.interval = 100
  config.mask_update.end_step = 200_000
  config.mask_update.drop_fraction = 0.1
  config.mask_update.schedule = 'cosine'
  config.pruning.begin_step = 50_000
  config.pruning.end_step = 150_000
  config.pruning.frequency = 1_000

  config.log_every_steps = 200
  config.eval_every_steps = 10_000
  config.checkpoint_every_steps = 5_000
  return config


def smoke(config: ml_collections.ConfigDict) -> None:
  run_config.shrink_for_smoke_test(config)
  config.dataset.sequence_length = 16
  config.model.width = 0.125


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """The WikiText-103 GRU config; ``arg``: 'smoke' and/or key=value."""
  return run_config.apply_arg(base_gru_config(), arg, {'smoke': smoke})
