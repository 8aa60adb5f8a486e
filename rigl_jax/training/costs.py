r"""Inference and training FLOPs of an experiment, as in the RigL paper.

Inference FLOPs of one example (one sequence for language models) are 2 x
the multiply-accumulates of every convolution, dense and recurrent product of
the model, counted by tracing it (``rigl_jax.flop_counting``); a sparse
kernel's products scale by its density. Training FLOPs per step follow the
paper, with f_D and f_S the dense and sparse inference FLOPs and ΔT the mask
update interval:

  dense, small-dense            3 f_D (small-dense: of its narrower model)
  static, SNIP, SET             3 f_S
  SNFS                          2 f_S + f_D (dense gradients every step)
  RigL                          (3 f_S ΔT + 2 f_S + f_D) / (ΔT + 1) while the
                                masks are updated, 3 f_S after T_end
  gradual pruning               3 f(t), f following the pruning schedule

The total sums the per-step FLOPs over the run's steps (training multiplier
applied) times the batch size. Ratios compare with the dense model: its
inference FLOPs, and its training FLOPs on the 1x schedule.

Prints the report of a config as JSON (no data set needed):

  python -m rigl_jax.training.costs --config=configs/mnist_lenet300.py \
      --config.method=set --config.sparsity=0.95
"""

import copy
import dataclasses
import functools
import json
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any, Optional

from absl import app
from absl import flags
import flax.linen as nn
import jax
import ml_collections
from ml_collections import config_flags

from rigl_jax.data import specs as dataset_specs
from rigl_jax import errors
from rigl_jax.training import build as experiment
from rigl_jax.training import flop_counting
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import methods
from rigl_jax.training import config as run_config
from rigl_jax.sparse import schedules
from rigl_jax.sparse import tree_paths

# Per-layer sparsities by parameter path; leaves absent from it are dense.
Sparsities = Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class ModelCost:
  """The products of one model on one example, before any sparsity.

  Attributes:
    params: the model's parameters as ``jax.ShapeDtypeStruct`` leaves.
    macs: multiply-accumulates by parameter path and unattributed.
  """
  params: Any
  macs: flop_counting.MacCounts

  @property
  def param_shapes(self) -> dict[str, tuple[int, ...]]:
    """Every parameter leaf's shape by path, in tree order."""
    return {path: tuple(leaf.shape)
            for path, leaf in tree_paths.named_leaves(self.params)}


# ---------------------------------------------------------------------------
# Inference FLOPs.


def model_cost(model: nn.Module, spec: dataset_specs.DatasetSpec) -> ModelCost:
  """Traces ``model`` on one example of ``spec`` (shapes only, no compute)."""
  try:
    hash((model, spec))
  except TypeError:  # A module attribute is a list or a dict.
    return _trace_model(model, spec)
  # Reports of one config for many methods and sparsities trace it once.
  return _cached_trace_model(model, spec)


def _trace_model(model: nn.Module,
                 spec: dataset_specs.DatasetSpec) -> ModelCost:
  variables = experiment.abstract_variables(model, spec)
  params = variables['params']
  state = {k: v for k, v in variables.items() if k != 'params'}
  example = jax.ShapeDtypeStruct((1,) + tuple(spec.input_shape),
                                 spec.input_dtype)

  def apply(params, state, inputs):
    return model.apply({'params': params, **state}, inputs, train=False)

  return ModelCost(
      params=params,
      macs=flop_counting.macs_by_param(apply, params, state, example))


_cached_trace_model = functools.lru_cache(maxsize=32)(_trace_model)


def _density(sparsities: Sparsities, path: str) -> float:
  return 1.0 - sparsities.get(path, 0.0)


def layer_flops(cost: ModelCost,
                sparsities: Sparsities) -> list[dict[str, Any]]:
  """Inference FLOPs of each parameter leaf that feeds a product or is sparse.

  Returns:
    In parameter order, one dict per leaf that feeds a product or is
    sparsified: 'path', 'shape', 'sparsity' (0.0 if dense), 'dense_flops'
    and 'flops' (scaled by the density).
  """
  layers = []
  for path, shape in cost.param_shapes.items():
    macs = cost.macs.by_param.get(path, 0)
    if not macs and path not in sparsities:
      continue
    layers.append({
        'path': path,
        'shape': list(shape),
        'sparsity': float(sparsities.get(path, 0.0)),
        'dense_flops': 2 * macs,
        'flops': 2 * macs * _density(sparsities, path),
    })
  return layers


def inference_flops(cost: ModelCost, sparsities: Sparsities) -> float:
  """FLOPs of one example: 2 x MACs, each kernel's scaled by its density."""
  attributed = sum(macs * _density(sparsities, path)
                   for path, macs in cost.macs.by_param.items())
  return 2.0 * (attributed + cost.macs.unattributed)


# ---------------------------------------------------------------------------
# Training FLOPs: per-step formulas and their sums over a run (per example).


def dense_step_flops(dense_flops: float) -> float:
  """Forward, input gradients and weight gradients, all dense: 3 f_D."""
  return 3.0 * dense_flops


def sparse_step_flops(sparse_flops: float) -> float:
  """All three passes sparse (static, SNIP, SET, RigL after T_end): 3 f_S."""
  return 3.0 * sparse_flops


def snfs_step_flops(sparse_flops: float, dense_flops: float) -> float:
  """SNFS needs the dense weight gradients every step: 2 f_S + f_D."""
  return 2.0 * sparse_flops + dense_flops


def rigl_step_flops(sparse_flops: float, dense_flops: float,
                    interval: int) -> float:
  """RigL's average while updating: one dense-gradient step in ΔT + 1."""
  return ((3.0 * sparse_flops * interval + 2.0 * sparse_flops + dense_flops) /
          (interval + 1))


def rigl_train_flops(sparse_flops: float, dense_flops: float, *,
                     num_steps: int, begin_step: int, end_step: int,
                     interval: int) -> float:
  """Per-example FLOPs of a RigL run: averaged while begin <= t < T_end."""
  updating = max(0, min(end_step, num_steps) - begin_step)
  return (updating * rigl_step_flops(sparse_flops, dense_flops, interval) +
          (num_steps - updating) * sparse_step_flops(sparse_flops))


def pruning_train_flops(schedule: schedules.PruningSchedule, num_steps: int,
                        dense_flops: float,
                        flops_after: Callable[[int], float]) -> float:
  """Per-example FLOPs of a gradual pruning run: 3 f(t) summed over steps.

  Args:
    schedule: the pruning schedule.
    num_steps: the run's number of steps.
    dense_flops: f before the first pruning step (the masks start full).
    flops_after: the inference FLOPs with the masks that the pruning step
      at the given step leaves.

  Returns:
    The sum of 3 f(t) over t in [0, num_steps). A pruning step at t changes
    the masks after step t's gradients, so step t costs the masks of the
    previous pruning step.
  """
  # A pruning step at the last step (or later) changes no step's cost.
  updates = [t for t in range(schedule.begin_step,
                              min(schedule.end_step, num_steps - 2) + 1)
             if schedule.is_update_step(t)]
  if not updates:
    return num_steps * dense_step_flops(dense_flops)
  total = (updates[0] + 1) * dense_step_flops(dense_flops)
  for step, next_step in zip(updates, updates[1:] + [num_steps - 1]):
    total += (next_step - step) * sparse_step_flops(flops_after(step))
  return total


def pruning_sparsities(schedule: schedules.PruningSchedule, step: int,
                       final: Sparsities) -> dict[str, float]:
  """Per-layer sparsities that the pruning step at ``step`` prunes to."""
  remaining = float(schedule.remaining(step))
  return {path: s + (schedule.initial_sparsity - s) * remaining
          for path, s in final.items()}


def train_flops_per_example(config: ml_collections.ConfigDict,
                            cost: ModelCost, sparsities: Sparsities) -> float:
  """The per-example training FLOPs of a resolved config, summed over steps.

  Args:
    config: a config after ``run_config.resolve`` (multiplier applied).
    cost: the trained model's products (the narrow one for small_dense).
    sparsities: the trained per-layer sparsities (final ones for pruning);
      empty for dense methods.

  Raises:
    ValueError: for a method without a FLOPs formula.
  """
  steps = config.num_train_steps
  dense = inference_flops(cost, {})
  sparse = inference_flops(cost, sparsities)
  method = config.method
  if method in ('dense', 'small_dense'):
    return steps * dense_step_flops(dense)
  if method in ('static', 'snip', 'set'):
    return steps * sparse_step_flops(sparse)
  if method == 'snfs':
    return steps * snfs_step_flops(sparse, dense)
  if method == 'rigl':
    return rigl_train_flops(
        sparse, dense, num_steps=steps,
        begin_step=config.mask_update.begin_step,
        end_step=config.mask_update.end_step,
        interval=config.mask_update.interval)
  if method == 'pruning':
    schedule = methods.from_config(config).schedule
    return pruning_train_flops(
        schedule, steps, dense, lambda step: inference_flops(
            cost, pruning_sparsities(schedule, step, sparsities)))
  raise ValueError(f'config.method: no training-FLOPs formula for {method!r}')


# ---------------------------------------------------------------------------
# The report of a config.


def trained_sparsities(config: ml_collections.ConfigDict,
                       params: Any) -> dict[str, float]:
  """The per-layer sparsities a run trains to; empty for dense methods."""
  if not methods.get_method_class(config.method).uses_masks:
    return {}
  return dict(tree_paths.named_leaves(experiment.get_sparsities(config,
                                                                params)))


def _checked_overrides(overrides: Mapping[str, float],
                       param_shapes: Mapping[str, Any]) -> dict[str, float]:
  unknown = sorted(set(overrides) - set(param_shapes))
  if unknown:
    raise ValueError(f'layer_sparsities names unknown parameters {unknown}; '
                     f'parameter paths are {list(param_shapes)}')
  return {path: float(s) for path, s in overrides.items()}


def _nonzero_params(param_shapes: Mapping[str, tuple[int, ...]],
                    sparsities: Sparsities) -> int:
  total = 0
  for path, shape in param_shapes.items():
    size = math.prod(shape)
    total += (masks_lib.num_active_for(sparsities[path], size)
              if path in sparsities else size)
  return total


def flops_report(
    config: ml_collections.ConfigDict,
    layer_sparsities: Optional[Mapping[str, float]] = None) -> dict[str, Any]:
  """Parameter counts and inference/training FLOPs of a run, JSON-able.

  Args:
    config: a run config as given to ``train_and_evaluate`` (not resolved;
      the training multiplier is applied here).
    layer_sparsities: measured per-layer sparsities by parameter path (e.g.
      results.json's ``sparsity.layers``) to use instead of the
      distribution's, e.g. after SNIP with global ranking. Ignored for dense
      methods.

  Returns:
    'method', 'width' (the trained width), 'params', 'nonzero_params',
    'dense_inference_flops', 'inference_flops', 'inference_flops_ratio',
    'train_steps', 'batch_size', 'train_flops', 'dense_train_flops' (dense
    model, 1x schedule), 'train_flops_ratio', 'unattributed_flops' (products
    of activations only, inside the inference FLOPs) and 'layers' (see
    ``layer_flops``).
  """
  run = run_config.resolve(config)
  baseline = copy.deepcopy(config)
  baseline.training_multiplier = 1.0
  baseline_steps = run_config.resolve(baseline).num_train_steps

  spec = dataset_specs.get_spec(run.dataset)
  width = experiment.training_width(run)
  cost = model_cost(experiment.create_model(run, width), spec)
  dense_cost = model_cost(experiment.create_model(run), spec)
  sparsities = trained_sparsities(run, cost.params)
  if layer_sparsities is not None and methods.get_method_class(
      run.method).uses_masks:
    sparsities.update(_checked_overrides(layer_sparsities, cost.param_shapes))

  dense_flops = inference_flops(dense_cost, {})
  sparse_flops = inference_flops(cost, sparsities)
  train_flops = run.batch_size * train_flops_per_example(run, cost, sparsities)
  dense_train_flops = (run.batch_size * baseline_steps *
                       dense_step_flops(dense_flops))
  return {
      'method': run.method,
      'width': width,
      'params': sum(math.prod(s) for s in cost.param_shapes.values()),
      'nonzero_params': _nonzero_params(cost.param_shapes, sparsities),
      'dense_inference_flops': dense_flops,
      'inference_flops': sparse_flops,
      'inference_flops_ratio': sparse_flops / dense_flops,
      'train_steps': run.num_train_steps,
      'batch_size': run.batch_size,
      'train_flops': train_flops,
      'dense_train_flops': dense_train_flops,
      'train_flops_ratio': train_flops / dense_train_flops,
      'unattributed_flops': 2.0 * cost.macs.unattributed,
      'layers': layer_flops(cost, sparsities),
  }


def main(argv: list[str], config: ml_collections.ConfigDict) -> None:
  """Prints the report of ``config`` as one JSON object."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  try:
    report = flops_report(config)
  except errors.RunError as e:
    # As rigl_jax.main: one readable line for a bad config.
    print(f'rigl_jax.training.costs: {type(e).__name__}: {e}', file=sys.stderr)
    sys.exit(1)
  print(json.dumps(report, indent=2))


def _run_cli() -> None:
  # The flag is defined here, not at import, so that the trainer can import
  # this module next to rigl_jax.main, which defines its own --config.
  config_flag = config_flags.DEFINE_config_file(
      'config', None, 'Experiment config file (configs/*.py[:args]).',
      lock_config=True)
  flags.mark_flags_as_required(['config'])
  app.run(lambda argv: main(argv, config_flag.value))


if __name__ == '__main__':
  _run_cli()
