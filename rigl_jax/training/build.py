"""build(config): everything a run is made of, from its config alone.

One place turns a config into objects: the resolved config, the data set's
spec and device preprocessing, the model (narrowed for Small-Dense), its
abstract parameters, the per-layer sparsities, the method, the optimizer
and the cost model (parameter and FLOPs counts). The training loop, the
cost report, the benchmarks and the tests all start from it, and every
check that needs no data happens here, so a bad config fails in seconds,
before any data loading or compilation, naming its key.
"""

import dataclasses
import functools
import math
import re
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rigl_jax import data
from rigl_jax import models
from rigl_jax.data import specs as dataset_specs
from rigl_jax.sparse import checks
from rigl_jax.sparse import distributions
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import methods
from rigl_jax.sparse import tree_paths
from rigl_jax.training import config as config_lib
from rigl_jax.training import costs as costs_lib
from rigl_jax.training import optimizers
from rigl_jax.training import warm_start


@dataclasses.dataclass(frozen=True)
class Setup:
  """What a run is made of.

  Attributes:
    run: the resolved config (training multiplier applied).
    spec: what the data set feeds the model.
    width: the width multiplier of the trained model.
    model: the trained model.
    abstract_params: its parameters' shapes and dtypes.
    sparsities: a float per sparse leaf of the params, None per dense one.
    method: the sparse training method.
    tx: the optax optimizer (before the sparse wrapping).
    preprocess: the data set's device preprocessing.
    costs: parameter and FLOPs counts of the run.
    compute_dtype: of activations and matmuls; None computes in the params'
      float32 (``config.half_precision``).
  """

  run: ml_collections.ConfigDict
  spec: dataset_specs.DatasetSpec
  width: float
  model: nn.Module
  abstract_params: Any
  sparsities: Any
  method: methods.SparseMethod
  tx: Any
  preprocess: data.DevicePreprocess
  costs: costs_lib.CostModel
  compute_dtype: Optional[Any] = None


def dummy_inputs(
    spec: dataset_specs.DatasetSpec, batch_size: int = 1
) -> np.ndarray:
  """Zeros with the spec's input shape, for ``model.init`` and tracing."""
  return np.zeros((batch_size,) + spec.input_shape, spec.input_dtype)


def abstract_variables(
    model: nn.Module, spec: dataset_specs.DatasetSpec
) -> Any:
  """Shapes and dtypes of all of ``model``'s variables (no computation)."""
  return jax.eval_shape(
      lambda: model.init(jax.random.PRNGKey(0), dummy_inputs(spec), train=False)
  )


def create_model(
    run: ml_collections.ConfigDict,
    spec: dataset_specs.DatasetSpec,
    width: float,
) -> nn.Module:
  """The config's model at ``width``."""
  return models.create_model(
      run.model.name,
      num_classes=spec.num_classes,
      width=width,
      **run.model.options.to_dict(),
  )


def get_sparsities(
    run: ml_collections.ConfigDict, params: Any, rules: Any = None
) -> Any:
  """Per-layer sparsities of ``params`` under the config's distribution.

  ``rules`` replace ``config.layer_sparsity`` when given.
  """
  return distributions.get_sparsities(
      params,
      run.sparsity,
      run.distribution,
      rules=run.layer_sparsity if rules is None else rules,
      first_layer=models.FIRST_LAYERS[run.model.name],
      erk_power_scale=run.erk_power_scale,
  )


def _layer_sparsities(
    run: ml_collections.ConfigDict,
    spec: dataset_specs.DatasetSpec,
    params: Any,
) -> Any:
  """Per-layer sparsities; with a reference width, those of that model.

  A Big-Sparse model (the paper's MobileNet v1 at width 1.98) keeps the
  per-layer sparsities of the width-1 model, as the reference computed its
  FLOPs; under 'uniform' it makes no difference.
  """
  width = _reference_width(run)
  if width is None:
    return get_sparsities(run, params)
  reference = abstract_variables(create_model(run, spec, width), spec)
  return get_sparsities(run, reference['params'])


def _sparse_model_size(
    run: ml_collections.ConfigDict, params: Any, rules: Any
) -> methods.base.SparseModelSize:
  """Nonzeros and storage of the config's sparse model under ``rules``."""
  sparsities = get_sparsities(run, params, rules)
  return methods.base.SparseModelSize(
      nonzeros=masks_lib.num_nonzero_params(params, sparsities),
      bits=masks_lib.size_in_bits(params, sparsities),
  )


def _check_sparse_layers(
    method: methods.SparseMethod, sparsities: Any, params: Any
) -> None:
  """A sparse method needs a sparse layer, and no layer may be empty."""
  named = dict(tree_paths.named_leaves(sparsities))
  if not method.uses_masks:
    return
  checks.require(
      named,
      'layer_sparsity',
      f'no kernel is sparse, so method {method.name!r} would '
      'train a dense model; keep some kernels sparse or use '
      "method='dense'",
  )
  checks.require(
      any(s > 0 for s in named.values()),
      'sparsity',
      f'method {method.name!r} trains sparse masks and needs a ' 'sparsity > 0',
  )
  sizes = {path: leaf.size for path, leaf in tree_paths.named_leaves(params)}
  empty = [
      path
      for path, s in named.items()
      if masks_lib.num_active_for(s, sizes[path]) == 0
  ]
  checks.require(
      not empty,
      'sparsity',
      f'{empty} would keep no active weight at these sparsities; '
      'lower config.sparsity or give them a rule in '
      'config.layer_sparsity',
  )


def _check_model_fits_data(
    run: ml_collections.ConfigDict, spec: dataset_specs.DatasetSpec
) -> None:
  name = run.model.name
  checks.require(
      name not in models.TASKS or models.TASKS[name] == spec.task,
      'model.name',
      f'{name!r} is a {models.TASKS.get(name, "")} model and '
      f'{run.dataset.name!r} a {spec.task} data set; models for it: '
      f'{sorted(m for m, t in models.TASKS.items() if t == spec.task)}',
  )


def _reference_model(
    run: ml_collections.ConfigDict,
    spec: dataset_specs.DatasetSpec,
    base_model: nn.Module,
) -> nn.Module:
  """The dense model whose FLOPs the ratios divide by."""
  width = _reference_width(run)
  return base_model if width is None else create_model(run, spec, width)


def _reference_width(run: ml_collections.ConfigDict) -> Optional[float]:
  """``model.reference_width`` if it differs from the model's width."""
  width = run.model.reference_width
  if width is None or width == run.model.width:
    return None
  checks.require(
      math.isfinite(width) and width > 0,
      'model.reference_width',
      f'must be a positive number, got {width!r}',
  )
  return width


def _check_l2_exclude(run: ml_collections.ConfigDict, params: Any) -> None:
  """Every exemption from L2 names some kernel (a typo would exempt none)."""
  names = [
      name for name, leaf in tree_paths.named_leaves(params) if leaf.ndim >= 2
  ]
  for pattern in run.optimizer.l2_exclude:
    checks.require(
        any(re.search(pattern, name) for name in names),
        'optimizer.l2_exclude',
        f'{pattern!r} matches no kernel; kernels are {names}',
    )


def _check_devices(run: ml_collections.ConfigDict) -> None:
  for key in ('batch_size', 'eval_batch_size'):
    checks.require(
        run[key] % jax.device_count() == 0,
        key,
        f'{run[key]} is not divisible by the number of devices '
        f'({jax.device_count()})',
    )
  checks.require(
      not run.dataset.device_resident or data.is_in_memory(run.dataset.name),
      'dataset.device_resident',
      f'{run.dataset.name} streams from disk and cannot be held on the '
      'devices; set it to False',
  )


def build(config: ml_collections.ConfigDict) -> Setup:
  """Resolves, checks and builds everything of ``config`` that needs no data.

  Raises:
    errors.ConfigError: naming the offending key.
  """
  run = config_lib.resolve(config)
  with config_lib.as_config_errors():
    _check_devices(run)
    method = methods.from_config(run)
    spec = dataset_specs.get_spec(run.dataset)
    _check_model_fits_data(run, spec)
    base_model = create_model(run, spec, run.model.width)
    base_params = abstract_variables(base_model, spec)['params']
    sparsities = _layer_sparsities(run, spec, base_params)
    _check_sparse_layers(method, sparsities, base_params)
    width = method.model_width(
        run.model.width,
        lambda w: masks_lib.num_params(
            abstract_variables(create_model(run, spec, w), spec)['params']
        ),
        functools.partial(_sparse_model_size, run, base_params),
    )
    model = (
        base_model
        if width == run.model.width
        else create_model(run, spec, width)
    )
    params = (
        base_params
        if model is base_model
        else abstract_variables(model, spec)['params']
    )
    if not method.uses_masks:
      sparsities = jax.tree.map(lambda _: None, params)
    tx = optimizers.create_optimizer(run)
    _check_l2_exclude(run, params)
    warm_start.check(run)
    preprocess = data.device_preprocess(run.dataset.name)
    costs = costs_lib.CostModel.of(
        run=run,
        method=method,
        trained=costs_lib.model_cost(model, spec),
        dense=costs_lib.model_cost(
            _reference_model(run, spec, base_model), spec
        ),
        sparsities=dict(tree_paths.named_leaves(sparsities)),
        baseline_steps=config.num_train_steps,
        width=width,
    )
    costs.report()  # Anything a report needs is checked before training.
  return Setup(
      run=run,
      spec=spec,
      width=width,
      model=model,
      abstract_params=params,
      sparsities=sparsities,
      method=method,
      tx=tx,
      preprocess=preprocess,
      costs=costs,
      compute_dtype=jnp.bfloat16 if run.half_precision else None,
  )


def flops_report(
    config: ml_collections.ConfigDict, layer_sparsities: Any = None
) -> dict[str, Any]:
  """``build(config).costs.report(layer_sparsities)``."""
  return build(config).costs.report(layer_sparsities)
