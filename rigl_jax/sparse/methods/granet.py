"""GraNet (Liu et al., "Sparse Training via Boosting Pruning Plasticity with
Neuroregeneration", NeurIPS 2021; code: github.com/VITA-Group/GraNet,
``CIFAR/sparselearning/core.py``): gradual magnitude pruning with zero-cost
neuroregeneration.

Training starts dense (initial sparsity s_i = 0) or from random masks at s_i
> 0, and prunes each layer to its final sparsity along Zhu & Gupta's cubic
schedule, s_t = s_f + (s_i - s_f) (1 - (t - t0) / (t_f - t0)) ** 3. Every ΔT
steps after t0 (and at t_f), in each sparse layer:

1. Pruning: the active weights with the smallest |w| are removed until the
   layer holds the schedule's count for t (nothing after t_f).
2. Neuroregeneration: of the n weights left, the floor(r_t n) with the
   smallest |w| are dropped and as many entries are grown, by the largest
   |dense gradient|, among all entries not kept (those pruned in step 1
   included), as RigL does. r_t decays from r along a cosine over the whole
   run, r/2 (1 + cos(π t / T)), T = ``num_train_steps``.

Regeneration keeps going, every ΔT steps, after pruning has ended (the
authors' ``Masking.step`` calls ``truncate_weights`` at every update for
``--method GraNet``), so the last part of a run is RigL at the final
sparsity. The optimizer step is taken on update steps, before the masks
change (``Masking.step`` calls ``optimizer.step()`` first); dropped weights
and the optimizer state of grown ones are zeroed by the train state. Reads
the ``granet`` block.

Defaults and their source:

- ``begin_step`` = 0 (t0): the ``--init-prune-epoch`` default of
  ``CIFAR/sparselearning/core.py`` (``add_sparse_args``), and the README's
  ImageNet commands.
- ``end_step`` = 500 (t_f), half of the base config's 1000 steps:
  ``--final-prune-epoch 80`` of ``--epochs 160`` in ``CIFAR/scripts/script``
  (the README's ImageNet commands: 30 of 100 epochs; the CIFAR default,
  110, with the README's 160 epochs).
- ``frequency`` = 100 (ΔT): the ``--update-frequency`` default of
  ``add_sparse_args`` (the README's runs: 1000 steps on CIFAR, 4000 on
  ImageNet).
- ``initial_sparsity`` = 0.5 (s_i): the ``--init-density 0.50`` default,
  as in ``CIFAR/scripts/script`` and the README's sparse-to-sparse runs; 0
  gives the paper's dense-to-sparse GraNet.
- ``regeneration_fraction`` = 0.5 (r): the ``--prune-rate 0.50`` default
  (CIFAR and ImageNet), as in the README's CIFAR commands.

What differs from the official code, and why:

- Pruning is layer-wise: each layer follows the cubic schedule to its own
  final sparsity, the run's distribution (ERK, uniform, ...). The official
  ``--method GraNet`` prunes globally (``Masking.pruning``: one magnitude
  threshold over all layers; ``GraNet_uniform`` is its layer-wise variant).
  Here every method shares the distribution's per-layer targets, which mask
  structures need (a count per group), and the training FLOPs are known
  before the run; a global threshold's per-layer outcome depends on the
  weights.
- A sparse start draws each layer's random mask at min(s_i, its final
  sparsity) (the official code draws ERK masks at density 1 - s_i); a
  layer whose target is below s_i starts at its target. Under N:M masks
  the layers hold N:M from the start (or from the first pruning step when
  s_i = 0).
- The final sparsity is reached at t_f: the official schedule counts
  pruning iterations floor(step / ΔT) and stops one iteration before the
  last (``curr_prune_iter <= final_iter - 1``), ending slightly denser.
- The regeneration fraction decays to 0 at the end of the run; the official
  ``CosineDecay`` has a floor of 0.005 (``eta_min``). It is floor(r n) as
  RigL's here, ceil(r n) there (``magnitude_death``): at most one
  connection per layer and update.
- Masks change from the weights at the start of the update step (as every
  method here); the official code prunes after that step's optimizer step.
  A weight pruned and regrown in the same step keeps its value and
  optimizer state (the official code zeroes it).

Training FLOPs (RigL paper, appendix H): Σ_t 3 f(t) + Σ_u (f_D - f(u)),
f(t) the inference FLOPs at the masks of step t (at the initial sparsities
until the first pruning step, then after each the schedule's per-layer
sparsities, the final ones from t_f on), u the update steps, which compute
the dense gradient for the regrowth (2 f(u) + f_D instead of 3 f(u)). With
``regeneration_fraction`` 0 (gradual pruning alone) no dense gradient is
counted.
"""

import dataclasses
import numbers
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from rigl_jax.sparse import checks
from rigl_jax.sparse import flops
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import schedules
from rigl_jax.sparse import topology
from rigl_jax.sparse.methods import base
from rigl_jax.sparse.methods import drop_and_grow
from rigl_jax.sparse.methods import pruning


@dataclasses.dataclass(frozen=True)
class GraNet(base.SparseMethod):
  """Gradual magnitude pruning with drop-and-grow at every pruning step.

  Attributes:
    schedule: the cubic pruning schedule (t0, t_f, ΔT, s_i); its grid after
      t0 also times the regeneration.
    regeneration: r_t, the fraction of the remaining weights replaced at
      an update; no regeneration from its ``end_step`` on.
  """

  schedule: schedules.PruningSchedule
  regeneration: schedules.DropFraction

  name = 'granet'
  display_name = 'GraNet'
  changes_topology = True
  scaled_step_keys = ('granet.begin_step', 'granet.end_step')

  @classmethod
  def config_defaults(cls):
    return {
        'granet': {
            'begin_step': 0,  # t0
            'end_step': 500,  # t_f
            'frequency': 100,  # ΔT
            'initial_sparsity': 0.5,  # s_i
            'regeneration_fraction': 0.5,  # r
        }
    }

  @classmethod
  def smoke_overrides(cls, num_steps):
    return {
        'granet.begin_step': 0,
        'granet.end_step': num_steps - 1,
        'granet.frequency': 1,
    }

  @classmethod
  def from_config(cls, config: Any) -> 'GraNet':
    block = config.granet
    keys = ('begin_step', 'end_step', 'frequency', 'initial_sparsity')
    with checks.renamed(**{k: f'granet.{k}' for k in keys}):
      schedule = schedules.PruningSchedule(
          begin_step=block.begin_step,
          end_step=block.end_step,
          frequency=block.frequency,
          initial_sparsity=block.initial_sparsity,
      )
    for key in ('begin_step', 'end_step'):
      value = block[key]
      checks.require(
          isinstance(value, numbers.Integral)
          or (isinstance(value, float) and value.is_integer()),
          f'granet.{key}',
          f'must be an integer, got {value!r}',
      )
    checks.require(
        block.end_step < config.num_train_steps,
        'granet.end_step',
        f'must be below num_train_steps ({config.num_train_steps}) for '
        f'the final sparsity to be reached, got {block.end_step!r}',
    )
    sparsity = config.sparsity
    checks.require(
        not isinstance(sparsity, numbers.Real)
        or block.initial_sparsity <= sparsity,
        'granet.initial_sparsity',
        f'{block.initial_sparsity} is above sparsity ({sparsity}): GraNet '
        'prunes from it to sparsity',
    )
    with checks.renamed(initial_fraction='granet.regeneration_fraction'):
      regeneration = schedules.DropFraction(
          schedule='cosine',
          initial_fraction=block.regeneration_fraction,
          end_step=config.num_train_steps,
      )
    return cls(schedule=schedule, regeneration=regeneration)

  # -- Schedule --------------------------------------------------------------

  def _initial_sparsity(self, final: float) -> float:
    """A layer's sparsity before pruning, given its final one."""
    initial = self.schedule.initial_sparsity
    if initial == 0.0:
      return 0.0
    if self.structure.sparsity is not None:  # N:M holds only 1 - N/M.
      return final
    return min(initial, final)

  def is_pruning_step(self, step: Any) -> Any:
    """Whether ``step`` prunes (on the grid after t0, and t_f)."""
    return self.schedule.is_update_step(step) & (
        step > self.schedule.begin_step
    )

  def is_update_step(self, step: Any) -> Any:
    begin, frequency = self.schedule.begin_step, self.schedule.frequency
    regenerates = (
        (step > begin)
        & ((step - begin) % frequency == 0)
        & (step < self.regeneration.end_step)
    )
    return self.is_pruning_step(step) | regenerates

  # -- Cost ------------------------------------------------------------------

  def sparsities_after(
      self, step: int, final: Mapping[str, float]
  ) -> dict[str, float]:
    """Per-layer sparsities after the pruning step at ``step``."""
    if self.structure.sparsity is not None:
      return dict(final)  # The first pruning step reaches N:M.
    remaining = self.schedule.remaining_at(step)
    return {
        path: s + (self._initial_sparsity(s) - s) * remaining
        for path, s in final.items()
    }

  def train_flops(self, costs: flops.RunCosts) -> float:
    """Σ_t 3 f(t) + Σ_u (f_D - f(u)): see the module docstring.

    A pruning step at u changes the masks after step u's gradients, so
    step u costs the masks before it.
    """
    schedule, num_steps = self.schedule, costs.num_steps
    # The dense gradient is needed where something regrows.
    dense_extra = lambda f: (
        costs.dense_flops - f if self.regeneration.initial_fraction > 0 else 0.0
    )
    current = costs.flops_at(
        {p: self._initial_sparsity(s) for p, s in costs.sparsities.items()}
    )
    total, start = 0.0, 0
    for step in range(
        schedule.begin_step + 1, min(schedule.end_step, num_steps - 1) + 1
    ):
      if not self.is_pruning_step(step):
        continue
      total += (step + 1 - start) * flops.sparse_step(current)
      total += dense_extra(current)
      current = costs.flops_at(self.sparsities_after(step, costs.sparsities))
      start = step + 1
    total += (num_steps - start) * flops.sparse_step(current)
    # Regeneration alone, at the grid steps after t_f.
    after_end = schedule.begin_step + schedule.frequency * (
        (schedule.end_step - schedule.begin_step) // schedule.frequency + 1
    )
    regenerations = len(
        range(
            after_end,
            min(num_steps, self.regeneration.end_step),
            schedule.frequency,
        )
    )
    return total + regenerations * dense_extra(current)

  # -- Training --------------------------------------------------------------

  def init_masks(self, rng, params, sparsities):
    if self.schedule.initial_sparsity == 0.0:
      return masks_lib.full_masks(params, sparsities)
    initial = masks_lib.map_masks(
        lambda s: None if s is None else self._initial_sparsity(s), sparsities
    )
    return masks_lib.random_masks(rng, params, initial, self.structure)

  def init_state(self, params, masks, sparsities):
    del masks
    return {
        'num_active': pruning.schedule_counts(
            self.structure, params, sparsities, self._initial_sparsity
        )
    }

  def num_active_at(self, step: Any, counts: Mapping[str, Any]) -> Any:
    """Active entries (per group) at ``step``: the cubic schedule, in counts."""
    return pruning.active_at(self.schedule, step, counts)

  def update_masks(self, rng, step, params, grads, masks, state):
    fraction = self.regeneration(step)

    def layer(mask, weights, grad, counts, seed):
      if mask is None:
        return None
      pruned = self.structure.apply(
          lambda m, w, s: topology.prune_to(
              m, w, self.num_active_at(step, counts), s
          ),
          mask,
          weights,
          tie_seed=seed,
      )
      return self.structure.drop_and_grow(
          pruned,
          weights,
          jnp.abs(grad),
          drop_and_grow.num_to_swap(pruned, fraction),
          seed,
      )

    return masks_lib.map_masks(
        layer,
        masks,
        params,
        grads,
        state['num_active'],
        masks_lib.tie_seeds(rng, masks),
    )


METHOD = GraNet
