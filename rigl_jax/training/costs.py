r"""Inference and training FLOPs of a run, as in the RigL paper.

Inference FLOPs of one example (one sequence for language models) are 2 x
the multiply-accumulates of every convolution, dense and recurrent product of
the model, counted by tracing it (``flop_counting``); a sparse kernel's
products scale by its density. Training FLOPs follow each method's formula
(``SparseMethod.train_flops``, paper appendix H) from the dense and sparse
inference FLOPs f_D and f_S: 3 f_D for dense training, 3 f_S for static,
SNIP and SET, 2 f_S + f_D for SNFS, RigL's average over ΔT + 1 steps while
it updates, 3 f(t) along the pruning schedule. Ratios compare with the
dense model: its inference FLOPs, and its training FLOPs on the 1x
schedule.

``scripts/costs.py`` prints the report of a config as JSON (no data set
needed).
"""

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any, Optional

import flax.linen as nn
import jax
import ml_collections

from rigl_jax.data import specs as dataset_specs
from rigl_jax.sparse import flops
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import methods
from rigl_jax.sparse import tree_paths
from rigl_jax.training import flop_counting

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
    return {
        path: tuple(leaf.shape)
        for path, leaf in tree_paths.named_leaves(self.params)
    }


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


def _trace_model(
    model: nn.Module, spec: dataset_specs.DatasetSpec
) -> ModelCost:
  example = jax.ShapeDtypeStruct(
      (1,) + tuple(spec.input_shape), spec.input_dtype
  )
  variables = jax.eval_shape(
      lambda x: model.init(jax.random.PRNGKey(0), x, train=False), example
  )
  params = variables['params']
  state = {k: v for k, v in variables.items() if k != 'params'}

  def apply(params, state, inputs):
    return model.apply({'params': params, **state}, inputs, train=False)

  return ModelCost(
      params=params,
      macs=flop_counting.macs_by_param(apply, params, state, example),
  )


_cached_trace_model = functools.lru_cache(maxsize=32)(_trace_model)


def _density(sparsities: Sparsities, path: str) -> float:
  return 1.0 - sparsities.get(path, 0.0)


def layer_flops(
    cost: ModelCost, sparsities: Sparsities
) -> list[dict[str, Any]]:
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
    layers.append(
        {
            'path': path,
            'shape': list(shape),
            'sparsity': float(sparsities.get(path, 0.0)),
            'dense_flops': 2 * macs,
            'flops': 2 * macs * _density(sparsities, path),
        }
    )
  return layers


def inference_flops(cost: ModelCost, sparsities: Sparsities) -> float:
  """FLOPs of one example: 2 x MACs, each kernel's scaled by its density."""
  attributed = sum(
      macs * _density(sparsities, path)
      for path, macs in cost.macs.by_param.items()
  )
  return 2.0 * (attributed + cost.macs.unattributed)


# ---------------------------------------------------------------------------
# The report of a run.


def _checked_overrides(
    overrides: Mapping[str, float], param_shapes: Mapping[str, Any]
) -> dict[str, float]:
  unknown = sorted(set(overrides) - set(param_shapes))
  if unknown:
    raise ValueError(
        f'layer_sparsities names unknown parameters {unknown}; '
        f'parameter paths are {list(param_shapes)}'
    )
  return {path: float(s) for path, s in overrides.items()}


def _nonzero_params(
    param_shapes: Mapping[str, tuple[int, ...]], sparsities: Sparsities
) -> int:
  total = 0
  for path, shape in param_shapes.items():
    size = math.prod(shape)
    total += (
        masks_lib.num_active_for(sparsities[path], size)
        if path in sparsities
        else size
    )
  return total


def _size_bits(
    param_shapes: Mapping[str, tuple[int, ...]], sparsities: Sparsities
) -> int:
  """32 bits per nonzero, a mask bit per entry of a sparse leaf."""
  mask_bits = sum(
      math.prod(param_shapes[path]) for path, s in sparsities.items() if s > 0
  )
  return (
      masks_lib.BITS_PER_WEIGHT * _nonzero_params(param_shapes, sparsities)
      + mask_bits
  )


@dataclasses.dataclass(frozen=True)
class CostModel:
  """What the paper's cost columns of a run are computed from.

  Attributes:
    method: the run's method (its training-FLOPs formula).
    trained: products of the trained model (narrowed for Small-Dense).
    dense: products of the dense model at the config's width (the ratios'
      reference).
    sparsities: per-layer sparsities of the trained model by path (final
      ones for pruning; empty for dense methods).
    num_steps: the run's steps (training multiplier applied).
    baseline_steps: the steps of the 1x schedule.
    batch_size: examples per step.
    width: the trained model's width multiplier.
  """

  method: methods.SparseMethod
  trained: ModelCost
  dense: ModelCost
  sparsities: Mapping[str, float]
  num_steps: int
  baseline_steps: int
  batch_size: int
  width: float

  @classmethod
  def of(
      cls,
      *,
      run: ml_collections.ConfigDict,
      method: methods.SparseMethod,
      trained: ModelCost,
      dense: ModelCost,
      sparsities: Mapping[str, float],
      baseline_steps: int,
      width: float,
  ) -> 'CostModel':
    return cls(
        method=method,
        trained=trained,
        dense=dense,
        sparsities=dict(sparsities) if method.uses_masks else {},
        num_steps=run.num_train_steps,
        baseline_steps=baseline_steps,
        batch_size=run.batch_size,
        width=width,
    )

  def report(
      self, layer_sparsities: Optional[Mapping[str, float]] = None
  ) -> dict[str, Any]:
    """Parameter counts and inference/training FLOPs, JSON-able.

    Args:
      layer_sparsities: measured per-layer sparsities by parameter path
        (results.json's ``sparsity.layers``) to use instead of the
        distribution's, e.g. after SNIP with global ranking. Ignored for
        dense methods.

    Returns:
      'method', 'width', 'params', 'nonzero_params', 'size_bits' (32 per
      nonzero, one per mask entry), 'dense_inference_flops',
      'inference_flops', 'inference_flops_ratio', 'train_steps',
      'batch_size', 'train_flops', 'dense_train_flops' (dense model, 1x
      schedule), 'train_flops_ratio', 'unattributed_flops' (products of
      activations only, inside the inference FLOPs) and 'layers' (see
      ``layer_flops``).
    """
    sparsities = dict(self.sparsities)
    if layer_sparsities is not None and self.method.uses_masks:
      sparsities.update(
          _checked_overrides(layer_sparsities, self.trained.param_shapes)
      )
    dense_flops = inference_flops(self.dense, {})
    sparse_flops = inference_flops(self.trained, sparsities)
    train_flops = self.batch_size * self.method.train_flops(
        flops.RunCosts(
            num_steps=self.num_steps,
            dense_flops=inference_flops(self.trained, {}),
            sparse_flops=sparse_flops,
            sparsities=sparsities,
            flops_at=functools.partial(inference_flops, self.trained),
        )
    )
    dense_train_flops = (
        self.batch_size * self.baseline_steps * flops.dense_step(dense_flops)
    )
    return {
        'method': self.method.name,
        'width': self.width,
        'params': sum(math.prod(s) for s in self.trained.param_shapes.values()),
        'nonzero_params': _nonzero_params(
            self.trained.param_shapes, sparsities
        ),
        'size_bits': _size_bits(self.trained.param_shapes, sparsities),
        'dense_inference_flops': dense_flops,
        'inference_flops': sparse_flops,
        'inference_flops_ratio': sparse_flops / dense_flops,
        'train_steps': self.num_steps,
        'batch_size': self.batch_size,
        'train_flops': train_flops,
        'dense_train_flops': dense_train_flops,
        'train_flops_ratio': train_flops / dense_train_flops,
        'unattributed_flops': 2.0 * self.trained.macs.unattributed,
        'layers': layer_flops(self.trained, sparsities),
    }
