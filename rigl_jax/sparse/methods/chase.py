"""Chase (Yin et al., "Dynamic Sparsity Is Channel-Level Sparsity Learner",
NeurIPS 2023; code: github.com/luuyin/chase,
``Cifar/sparselearning/core_dst_chase.py``): dynamic sparse training that
gradually removes whole channels.

Every ΔT_p steps (t = ΔT_p, 2 ΔT_p, ...) each sparse layer of n active
weights drops the floor(r_t n) with the smallest |w| and grows as many, by
the largest |dense gradient|, among the entries not kept, as RigL does; r_t
decays from r along a cosine over the whole run, r/2 (1 + cos(π t / T)).

Meanwhile the channels (output units, a kernel's last axis) of the channel
layers are removed on a cubic schedule: the fraction removed of all their
channels is s_c(t) = s_c (1 - (1 - t / t_c) ** 3), applied every ΔT_c steps
at t + ΔT_p // 2 ≡ 0 (mod ΔT_c), halfway between weight updates as in the
official code, and at t_c, where it reaches s_c. A removal takes the
channels with the smallest unmasked mean magnitude (UMM: the mean |w| over
all the channel's entries, the inactive zeros included; the official
``--mag_wise``), compared across layers, with two floors per layer: the
official minimum, int(C (1 - s_c) β) of its C channels, and enough channels
to hold the layer's active weights. A removed channel's column of the mask
is all False from then on, so an export can cut it away, and a channel that
holds no active weight counts as removed.

Weight sparsity: each layer keeps its number of active weights. The weights
of the removed channels are regrown at once, by |dense gradient|, in the
layer's remaining channels, so every layer stays at the distribution's
sparsity and the run at ``sparsity``; the official code keeps the global
count instead (``baseline_nonzero``) and regrows it by global gradient at
the next update.

The optimizer step is taken on update steps, before the masks change
(``Masking.step`` calls ``optimizer.step()`` first). Reads the ``chase``
block.

Defaults and their source (the README's ``main_dst_chase.py`` commands,
``Cifar/sparselearning/core_dst_chase.py`` and ``Cifar/main_dst_chase.py``):

- ``interval`` = 1000 (ΔT_p): ``--update_frequency 1000``, the default and
  the README's value.
- ``drop_fraction`` = 0.5 (r): ``dst_decay``, ``CosineDecay(0.5, epochs *
  len(train_loader), 0.005)``, the exploration rate of the last epochs; in
  the MEST phase before them a 0.05 share of all weights is exchanged at
  density 0.1, also half the active ones.
- ``channel_sparsity`` = 0.5 (s_c): ``--start_layer_rate 0.5`` in every
  README command (the argparse default is 0.1).
- ``channel_interval`` = 1000 (ΔT_c): ``--layer_interval 1000``, the
  README's ResNet-50 (VGG-19: 8000).
- ``channel_end`` = 0.8125 (t_c / T): ``--stop_gmp_epochs 130`` of
  ``--epochs 160``; a fraction of the run so that any run length holds it.
- ``min_channel_ratio`` = 0.5 (β): ``--minumum_ratio``, the default and the
  README's ResNet-50 (VGG-19: 0.2).
- ``channel_layers`` = None: regexes of the layers whose channels may go;
  None takes every sparse kernel but the model's output layer. The
  official code lists them per model (``layer2split``): in residual
  networks only the convolutions inside a block, whose output feeds one
  other convolution; set it so for ResNets.

What differs from the official code, and why:

- Drop and grow are layer-wise and at the same step (RigL's update, as the
  paper describes Chase); the official runs use global magnitude pruning
  and global gradient growth, and until ``--stop_dst_epochs`` before the
  end MEST's schedule (prune to the budget, then grow a decaying extra
  share, so the network is denser than its target between updates). Here
  every method shares the distribution's per-layer targets, and the
  training FLOPs are known before the run.
- A removed channel's consumer (the next layer's inputs from it) is not
  masked: this framework has no layer graph (the official code names each
  channel layer's consumer, ``next_layers``, and masks both). The removed
  unit then outputs a constant (its bias through the activation, which an
  export folds into the consumer's bias) and its consumer weights keep
  training.
- Channels to remove are the smallest UMM across layers subject to each
  layer's floor: the official loop (a global threshold, layers at their
  floor set aside, repeated) selects the same set, up to ties, which it
  samples at random and which are broken by the run's seed here.
- The official schedule never quite reaches s_c (its last removal precedes
  ``stop_gmp_epochs``); here a removal at t_c reaches it.
- No update at step 0: the official first update follows ΔT_p optimizer
  steps. Mask structures (n_m, fan_in) are refused: a removed channel
  cannot keep a group's count.

Training FLOPs (RigL paper, appendix H): T · 3 f_S + U (f_D - f_S), U the
update steps (weight or channel), which compute the dense gradient for the
growth. Each layer keeps its count of active weights, so f_S holds from
start to end.
"""

import dataclasses
import re
from typing import Any, Optional

import jax
import jax.numpy as jnp

from rigl_jax.sparse import checks
from rigl_jax.sparse import flops
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import schedules
from rigl_jax.sparse import topology
from rigl_jax.sparse import tree_paths
from rigl_jax.sparse.methods import base
from rigl_jax.sparse.methods import drop_and_grow


def channel_axes(shape: tuple[int, ...]) -> tuple[int, ...]:
  """The axes of one channel's entries (all but the last, the outputs)."""
  return tuple(range(len(shape) - 1))


def live_channels(mask: jax.Array) -> jax.Array:
  """Bool per output channel: whether it holds an active weight."""
  return jnp.any(mask, axis=channel_axes(mask.shape))


def unmasked_mean_magnitude(weights: jax.Array) -> jax.Array:
  """UMM per output channel: mean |w| over all its entries, zeros included."""
  return jnp.mean(jnp.abs(weights), axis=channel_axes(weights.shape))


def within_layer_rank(scores: jax.Array, live: jax.Array) -> jax.Array:
  """Each live channel's rank by ascending score (0: smallest)."""
  order = jnp.argsort(jnp.where(live, scores, jnp.inf), stable=True)
  return (
      jnp.zeros(scores.shape, jnp.int32)
      .at[order]
      .set(jnp.arange(scores.size, dtype=jnp.int32))
  )


@dataclasses.dataclass(frozen=True)
class Chase(base.SparseMethod):
  """RigL-style updates while the lowest-UMM channels are removed.

  Attributes:
    interval: ΔT_p, steps between weight updates.
    drop_fraction: r_t, the fraction of a layer's weights replaced.
    channel_sparsity: s_c, the fraction of the channel layers' channels
      removed by ``channel_end_step``.
    channel_interval: ΔT_c, steps between channel removals.
    channel_end_step: t_c, the last channel removal.
    min_channel_ratio: β; a layer keeps int(C (1 - s_c) β) channels.
    channel_layers: regexes of layer paths whose channels may go; None:
      every sparse kernel but the model's output layer (``for_model``).
    output_layer: the model's output layer, set by ``for_model``.
  """

  interval: int
  drop_fraction: schedules.DropFraction
  channel_sparsity: float
  channel_interval: int
  channel_end_step: int
  min_channel_ratio: float = 0.5
  channel_layers: Optional[tuple[str, ...]] = None
  output_layer: str = ''

  name = 'chase'
  display_name = 'Chase'
  changes_topology = True

  @classmethod
  def config_defaults(cls):
    return {
        'chase': {
            'interval': 1000,  # ΔT_p
            'drop_fraction': 0.5,  # r
            'channel_sparsity': 0.5,  # s_c
            'channel_interval': 1000,  # ΔT_c
            'channel_end': 0.8125,  # t_c / T
            'min_channel_ratio': 0.5,  # β
            'channel_layers': base.Unset(tuple),
        }
    }

  @classmethod
  def smoke_overrides(cls, num_steps):
    del num_steps
    return {
        'chase.interval': 1,
        'chase.channel_interval': 1,
        'chase.channel_end': 0.5,
    }

  @classmethod
  def from_config(cls, config: Any) -> 'Chase':
    block = config.chase
    checks.require_positive_int('chase.interval', block.interval)
    checks.require_positive_int(
        'chase.channel_interval', block.channel_interval
    )
    checks.require_in_range(
        'chase.channel_sparsity',
        block.channel_sparsity,
        0.0,
        1.0,
        high_open=True,
    )
    checks.require_in_range(
        'chase.min_channel_ratio', block.min_channel_ratio, 0.0, 1.0
    )
    checks.require_in_range('chase.channel_end', block.channel_end, 0.0, 1.0)
    end_step = round(block.channel_end * config.num_train_steps)
    checks.require(
        end_step >= 1,
        'chase.channel_end',
        f'{block.channel_end!r} of num_train_steps '
        f'({config.num_train_steps}) ends channel removal before step 1',
    )
    with checks.renamed(initial_fraction='chase.drop_fraction'):
      drop_fraction = schedules.DropFraction(
          schedule='cosine',
          initial_fraction=block.drop_fraction,
          end_step=config.num_train_steps,
      )
    layers = block.channel_layers
    return cls(
        interval=block.interval,
        drop_fraction=drop_fraction,
        channel_sparsity=float(block.channel_sparsity),
        channel_interval=block.channel_interval,
        channel_end_step=end_step,
        min_channel_ratio=float(block.min_channel_ratio),
        channel_layers=None if layers is None else tuple(layers),
    )

  def structure_problem(self):
    if self.structure.is_structured:
      return (
          f'chase removes whole output channels, which {self.structure.kind}'
          " masks cannot hold (each group keeps its count); use 'unstructured'"
      )
    return None

  def for_model(self, output_layer: str) -> 'Chase':
    return dataclasses.replace(self, output_layer=output_layer)

  def removes_channels_of(self, path: str) -> bool:
    """Whether the channels of the layer at ``path`` may be removed."""
    if self.channel_layers is not None:
      return any(re.search(p, path) for p in self.channel_layers)
    return path != self.output_layer

  # -- Schedule --------------------------------------------------------------

  def is_weight_step(self, step: Any) -> Any:
    """Whether ``step`` drops and grows weights (t = ΔT_p, 2 ΔT_p, ...)."""
    return (step > 0) & (step % self.interval == 0)

  def is_channel_step(self, step: Any) -> Any:
    """Whether ``step`` removes channels (its grid up to t_c, and t_c)."""
    end = self.channel_end_step
    on_grid = (step + self.interval // 2) % self.channel_interval == 0
    return (step > 0) & (step <= end) & (on_grid | (step == end))

  def is_update_step(self, step: Any) -> Any:
    return self.is_weight_step(step) | self.is_channel_step(step)

  def removed_fraction(self, step: Any) -> Any:
    """s_c(t): the share of channels removed by ``step``, cubic to t_c."""
    progress = jnp.minimum(step, self.channel_end_step) / self.channel_end_step
    return self.channel_sparsity * (1.0 - (1.0 - progress) ** 3)

  # -- Cost ------------------------------------------------------------------

  def num_update_steps(self, num_steps: int) -> int:
    """Update steps (weight or channel) among the first ``num_steps``."""
    weight = (num_steps - 1) // self.interval
    channel_grid = range(
        (-(self.interval // 2)) % self.channel_interval,
        min(self.channel_end_step, num_steps - 1) + 1,
        self.channel_interval,
    )
    channel = set(channel_grid)
    if self.channel_end_step < num_steps:
      channel.add(self.channel_end_step)
    channel.discard(0)
    return weight + sum(1 for t in channel if t % self.interval)

  def train_flops(self, costs: flops.RunCosts) -> float:
    """T · 3 f_S + U (f_D - f_S): see the module docstring."""
    updates = self.num_update_steps(costs.num_steps)
    return costs.num_steps * flops.sparse_step(costs.sparse_flops) + updates * (
        costs.dense_flops - costs.sparse_flops
    )

  # -- Training --------------------------------------------------------------

  def _removed_channels(self, step, leaves, weights, paths, seed):
    """{leaf index: bool per channel removed now} of the channel layers."""
    layers = [
        i
        for i, (mask, path) in enumerate(zip(leaves, paths))
        if mask is not None and self.removes_channels_of(path)
    ]
    if not layers:
      return {}
    total = sum(leaves[i].shape[-1] for i in layers)
    scores, eligible, dead = [], [], 0
    for i in layers:
      mask = leaves[i]
      num_channels = mask.shape[-1]
      fan_in = mask.size // num_channels
      live = live_channels(mask)
      num_live = jnp.sum(live, dtype=jnp.int32)
      num_active = jnp.sum(mask, dtype=jnp.int32)
      floor = jnp.maximum(
          int(
              num_channels
              * (1.0 - self.channel_sparsity)
              * self.min_channel_ratio
          ),
          (num_active + fan_in - 1) // fan_in,
      )
      umm = unmasked_mean_magnitude(weights[i])
      can_go = live & (
          within_layer_rank(umm, live) < jnp.maximum(num_live - floor, 0)
      )
      scores.append(jnp.where(can_go, -umm, -jnp.inf))
      eligible.append(jnp.sum(can_go, dtype=jnp.int32))
      dead += num_channels - num_live
    target = jnp.floor(self.removed_fraction(step) * total).astype(jnp.int32)
    count = jnp.clip(target - dead, 0, sum(eligible))
    count = jnp.where(self.is_channel_step(step), count, 0)
    removed = topology.top_k_mask(jnp.concatenate(scores), count, seed)
    bounds = [leaves[i].shape[-1] for i in layers]
    parts = jnp.split(removed, [sum(bounds[:j]) for j in range(1, len(bounds))])
    return dict(zip(layers, parts))

  def update_masks(self, rng, step, params, grads, masks, state):
    del state
    fraction = jnp.where(
        self.is_weight_step(step), self.drop_fraction(step), 0.0
    )
    flat = jax.tree_util.tree_flatten_with_path(
        masks, is_leaf=tree_paths.is_none
    )[0]
    paths = [tree_paths.key_path_to_str(path) for path, _ in flat]
    leaves, treedef = jax.tree.flatten(masks, is_leaf=tree_paths.is_none)
    weights = treedef.flatten_up_to(params)
    gradients = treedef.flatten_up_to(grads)
    channel_rng, tie_rng = jax.random.split(rng)
    seeds = treedef.flatten_up_to(masks_lib.tie_seeds(tie_rng, masks))
    removed = self._removed_channels(
        step,
        leaves,
        weights,
        paths,
        jax.random.bits(channel_rng, (), jnp.uint32),
    )
    new = []
    for i, (mask, w, g, seed) in enumerate(
        zip(leaves, weights, gradients, seeds)
    ):
      if mask is None:
        new.append(None)
        continue
      num_swap = drop_and_grow.num_to_swap(mask, fraction)
      if i not in removed:
        new.append(topology.drop_and_grow(mask, w, jnp.abs(g), num_swap, seed))
        continue
      live = jnp.broadcast_to(live_channels(mask) & ~removed[i], mask.shape)
      num_active = jnp.sum(mask, dtype=jnp.int32)
      candidates = mask & live
      num_keep = jnp.minimum(
          num_active - num_swap, jnp.sum(candidates, dtype=jnp.int32)
      )
      kept = topology.top_k_mask(
          jnp.where(candidates, jnp.abs(w), -jnp.inf), num_keep, seed
      )
      grown = topology.top_k_mask(
          jnp.where(live & ~kept, jnp.abs(g), -jnp.inf),
          num_active - num_keep,
          topology.other_seed(seed),
      )
      new.append(kept | grown)
    return jax.tree.unflatten(treedef, new)


METHOD = Chase
