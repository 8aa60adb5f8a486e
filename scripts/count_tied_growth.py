r"""How often RigL must drop or grow among tied scores: MNIST LeNet-300-100.

RigL grows the inactive entries with the largest |gradient|. An input pixel
that is always zero (MNIST's border) gives exactly zero gradient to every
weight it feeds, as a dead ReLU unit does to every weight into it; when an
update must grow more entries than have a nonzero gradient, the rest are
chosen among zeros, i.e. by the tie-breaking rule. Weights grown into such
connections stay exactly zero, so the next update's drop meets ties too.
This trains the config with its method (RigL by default) and prints, per
layer, how many updates kept or grew entries chosen among ties, and how
many entries were chosen that way. ``--config`` is required, and
``--config.dataset.local_dir`` must hold MNIST's IDX files:

  python scripts/count_tied_growth.py --config=configs/mnist_lenet300.py \
      --config.dataset.local_dir=../shared/data/mnist --config.sparsity=0.98
"""

import json

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from rigl_jax import command_line
from rigl_jax import errors
from rigl_jax.data import mnist
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import topology
from rigl_jax.sparse import tree_paths
from rigl_jax.sparse import train_state as train_state_lib
from rigl_jax.sparse.methods import drop_and_grow
from rigl_jax.training import build
from rigl_jax.training import steps
from rigl_jax.training import tasks

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file.', lock_config=True
)


def _chosen_among_ties(scores, k):
  """How many of the k entries taken had to be chosen among ties."""
  taken = topology.top_k_mask(scores, k)
  threshold = jnp.min(jnp.where(taken, scores, jnp.inf))
  ties = jnp.sum(scores == threshold, dtype=jnp.int32)
  above = jnp.sum(scores > threshold, dtype=jnp.int32)
  return jnp.where((k > 0) & (ties > k - above), k - above, 0)


def tied_choices(state, grads):
  """Per sparse layer: entries swapped, kept among tied |w|, grown among
  tied |grad| (an always-zero pixel or a dead unit gives exact zeros)."""
  fraction = state.method.drop_fraction(state.step)

  def count(mask, weights, grad):
    k = drop_and_grow.num_to_swap(mask, fraction)
    num_active = jnp.sum(mask, dtype=jnp.int32)
    drop_scores = jnp.where(mask, jnp.abs(weights), -jnp.inf)
    kept = topology.top_k_mask(drop_scores, num_active - k)
    grow_scores = jnp.where(kept, -jnp.inf, jnp.abs(grad))
    return jnp.stack(
        [
            k,
            _chosen_among_ties(drop_scores, num_active - k),
            _chosen_among_ties(grow_scores, k),
        ]
    )

  return masks_lib.map_masks(
      lambda m, w, g: None if m is None else count(m, w, g),
      state.masks,
      state.params,
      grads,
  )


def _mnist_dir(setup: build.Setup) -> str:
  """The IDX files' directory: the script reads MNIST from files only."""
  dataset = setup.resolved['dataset']
  if dataset['name'] != 'mnist' or not dataset['local_dir']:
    raise errors.FlagError(
        'it trains on MNIST read from IDX files: give '
        '--config.dataset.local_dir=DIR (got dataset '
        f'{dataset["name"]!r}, local_dir {dataset["local_dir"]!r})'
    )
  return dataset['local_dir']


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  setup = build.build(_CONFIG.value)
  seed, batch_size = setup.seed, setup.data.batch_size
  train = mnist.load_idx_split(_mnist_dir(setup), 'train')
  images = jnp.asarray(train['inputs'])
  labels = jnp.asarray(train['labels'])
  params = setup.model.init(
      jax.random.key(seed), jnp.zeros((1,) + setup.spec.input_shape)
  )['params']
  state = train_state_lib.TrainState.create(
      params=params,
      tx=setup.tx,
      method=setup.method,
      sparsities=setup.sparsities,
      rng=jax.random.key(seed + 1),
  )

  @jax.jit
  def grads_of(state, batch):
    def loss_fn(params):
      logits, _ = steps.apply_model(
          setup.model, params, None, batch['inputs'], train=True
      )
      return tasks.cross_entropy(logits, batch['labels']).mean()

    return jax.grad(loss_fn)(state.params)

  apply = {
      kind: jax.jit(
          lambda s, g, kind=kind: s.apply_gradients(
              grads=g, topology_update=kind
          )
      )
      for kind in (False, True)
  }
  counts = {}
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(labels))
  per_epoch = len(labels) // batch_size
  for step in range(setup.intervals.num_train_steps):
    if step % per_epoch == 0:
      order = rng.permutation(len(labels))
    index = order[
        (step % per_epoch) * batch_size : (step % per_epoch + 1) * batch_size
    ]
    batch = setup.preprocess(
        {'inputs': images[index], 'labels': labels[index]}, None, True
    )
    grads = grads_of(state, batch)
    update = bool(setup.method.is_update_step(step))
    if update:
      for path, pair in tree_paths.named_leaves(tied_choices(state, grads)):
        counts.setdefault(path, []).append(np.asarray(pair).tolist())
    state = apply[update](state, grads)
  summary = {}
  for path, pairs in counts.items():
    pairs = np.array(pairs)
    summary[path] = {
        'updates': len(pairs),
        'swapped': int(pairs[:, 0].sum()),
        'updates_keeping_among_ties': int((pairs[:, 1] > 0).sum()),
        'kept_among_ties': int(pairs[:, 1].sum()),
        'updates_growing_among_ties': int((pairs[:, 2] > 0).sum()),
        'grown_among_ties': int(pairs[:, 2].sum()),
    }
  print(json.dumps(summary, indent=2))


if __name__ == '__main__':
  flags.mark_flags_as_required(['config'])
  command_line.run(main, 'count_tied_growth')
