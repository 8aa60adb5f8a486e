"""build(config): everything a run is made of, from its config alone.

The one place that reads a config: it returns a frozen ``Setup`` holding
the run's identity, its intervals, the data set's spec, batches and device
preprocessing, the model (narrowed for Small-Dense), its abstract
parameters, the per-layer sparsities, the method, the learning-rate
schedule and optimizer (built once), the warm start and the cost model.
The training loop, checkpoints, the cost report, the benchmarks and the
tests all start from the setup, and every check that needs no data happens
here, so a bad config fails in seconds, before any data loading or
compilation, naming its key.
"""

import copy
import dataclasses
import functools
import math
import re
from typing import Any, Callable, Optional

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from rigl_jax import data
from rigl_jax import models
from rigl_jax.data import specs as dataset_specs
from rigl_jax.sparse import checks
from rigl_jax.sparse import distributions
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import methods
from rigl_jax.sparse import structure as structure_lib
from rigl_jax.sparse import tree_paths
from rigl_jax.training import config as config_lib
from rigl_jax.training import costs as costs_lib
from rigl_jax.training import identity as identity_lib
from rigl_jax.training import optimizers
from rigl_jax.training import tasks
from rigl_jax.training import warm_start


@dataclasses.dataclass(frozen=True)
class Intervals:
  """How long a run trains and when it logs, evaluates and checkpoints."""

  num_train_steps: int
  log_every_steps: int
  eval_every_steps: int
  checkpoint_every_steps: int
  keep_checkpoints: int


@dataclasses.dataclass(frozen=True)
class DataSetup:
  """The run's data set, its batches and their preprocessing.

  Attributes:
    name: the data set.
    spec: what it feeds the model.
    batch_size: examples of a training step (all processes together).
    eval_batch_size: the same for evaluation.
    device_resident: whether the training set is held on the devices.
    preprocess: the device part of preprocessing, in the jitted step.
    create_pipeline: (process_index=, process_count=) -> its pipeline.
    batch_shapes: batch size -> shapes and dtypes of a batch.
    random_batch: (batch size, numpy Generator) -> a batch of random values.
  """

  name: str
  spec: dataset_specs.DatasetSpec
  batch_size: int
  eval_batch_size: int
  device_resident: bool
  preprocess: data.DevicePreprocess
  create_pipeline: Callable[..., Any]
  batch_shapes: Callable[[int], dict[str, jax.ShapeDtypeStruct]]
  random_batch: Callable[[int, np.random.Generator], dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class Setup:
  """Everything a run is made of; nothing after ``build`` reads the config.

  Attributes:
    config: the config as given, for the record (results.json, TensorBoard).
    resolved: the same with the training multiplier applied.
    identity: the keys that make the run (``rigl_jax.training.identity``).
    intervals: its length and when it logs, evaluates, checkpoints.
    seed: of the initial values, the data order and the method's draws.
    label_smoothing: of the training loss.
    task: what the model predicts; its evaluation metrics.
    data: the data set and its batches.
    width: the width multiplier of the trained model.
    model: the trained model.
    abstract_params: its parameters' shapes and dtypes.
    sparsities: a float per sparse leaf of the params, None per dense one.
    method: the sparse training method.
    learning_rate: the learning-rate schedule (step -> rate).
    tx: the optax optimizer (before the sparse wrapping), reading
      ``learning_rate``.
    costs: parameter and FLOPs counts of the run.
    warm_start: where the run starts from.
    compute_dtype: of activations and matmuls; None computes in the params'
      float32 (``config.half_precision``).
  """

  config: dict[str, Any]
  resolved: dict[str, Any]
  identity: identity_lib.Identity
  intervals: Intervals
  seed: int
  label_smoothing: float
  task: tasks.Task
  data: DataSetup
  width: float
  model: nn.Module
  abstract_params: Any
  sparsities: Any
  method: methods.SparseMethod
  learning_rate: optax.Schedule
  tx: Any
  costs: costs_lib.CostModel
  warm_start: warm_start.WarmStart
  compute_dtype: Optional[Any] = None

  @property
  def spec(self) -> dataset_specs.DatasetSpec:
    return self.data.spec

  @property
  def preprocess(self) -> data.DevicePreprocess:
    return self.data.preprocess


def dummy_inputs(
    spec: dataset_specs.DatasetSpec, batch_size: int = 1
) -> np.ndarray:
  """Zeros with the spec's input shape, for ``model.init`` and tracing."""
  return np.zeros((batch_size,) + spec.input_shape, spec.input_dtype)


def abstract_variables(
    model: nn.Module, spec: dataset_specs.DatasetSpec
) -> Any:
  """Shapes and dtypes of all of ``model``'s variables (no computation).

  Traced once per model and spec: a FLOPs table builds one config for
  every method and sparsity, and Small-Dense probes many widths.
  """
  try:
    hash((model, spec))
  except TypeError:  # A module attribute is a list or a dict.
    return _trace_variables(model, spec)
  # New containers around the shared leaves: callers may change the tree.
  return jax.tree.map(lambda leaf: leaf, _cached_trace_variables(model, spec))


def _trace_variables(model: nn.Module, spec: dataset_specs.DatasetSpec) -> Any:
  return jax.eval_shape(
      lambda: model.init(jax.random.PRNGKey(0), dummy_inputs(spec), train=False)
  )


_cached_trace_variables = functools.lru_cache(maxsize=256)(_trace_variables)


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
      first_layer=models.get(run.model.name).first_layer,
      erk_power_scale=run.erk_power_scale,
  )


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


def _structured_sparsities(
    structure: structure_lib.MaskStructure, sparsities: Any, params: Any
) -> Any:
  """The per-layer sparsities the structure realizes; refuses the layers
  that cannot hold it, and (under ``n_m``) any other sparsity than 1 - N/M.
  """
  if not structure.is_structured:
    return sparsities
  shapes = {path: leaf.shape for path, leaf in tree_paths.named_leaves(params)}
  name = f'mask_structure {structure.describe()}'
  for path, sparsity in tree_paths.named_leaves(sparsities):
    problem = structure.problem(shapes[path])
    checks.require(
        problem is None,
        'mask_structure.kind',
        f'{path} cannot hold {name}: {problem}; keep it dense with a rule '
        f"in config.layer_sparsity, e.g. ('{re.escape(path)}$', 'dense')",
    )
    if structure.sparsity is None:
      continue
    checks.require(
        math.isclose(sparsity, structure.sparsity, abs_tol=1e-9),
        'sparsity',
        f'under {name} every sparse layer has sparsity 1 - N/M = '
        f'{structure.sparsity:g}, but {path} would have {sparsity:g}; set '
        f'config.sparsity={structure.sparsity:g} and '
        "config.distribution='uniform'",
    )
  achieved = jax.tree.map(
      lambda s, p: None if s is None else structure.achieved(s, p.shape),
      sparsities,
      params,
      is_leaf=tree_paths.is_none,
  )
  for (path, asked), (_, got) in zip(
      tree_paths.named_leaves(sparsities), tree_paths.named_leaves(achieved)
  ):
    if abs(asked - got) > 1e-6:
      logging.info(
          'Under %s, %s has sparsity %.4f (asked %.4f).', name, path, got, asked
      )
  return achieved


def _check_model_fits_data(
    run: ml_collections.ConfigDict, spec: dataset_specs.DatasetSpec
) -> None:
  name = run.model.name
  task = models.get(name).task
  fitting = sorted(n for n, m in models.MODELS.items() if m.task == spec.task)
  checks.require(
      task == spec.task,
      'model.name',
      f'{name!r} is a {task} model and {run.dataset.name!r} a {spec.task} '
      f'data set; models for it: {fitting}',
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


def _intervals(run: ml_collections.ConfigDict) -> Intervals:
  return Intervals(
      num_train_steps=run.num_train_steps,
      log_every_steps=run.log_every_steps,
      eval_every_steps=run.eval_every_steps,
      checkpoint_every_steps=run.checkpoint_every_steps,
      keep_checkpoints=run.keep_checkpoints,
  )


def _data_setup(
    run: ml_collections.ConfigDict, spec: dataset_specs.DatasetSpec
) -> DataSetup:
  dataset = copy.deepcopy(run.dataset)
  return DataSetup(
      name=dataset.name,
      spec=spec,
      batch_size=run.batch_size,
      eval_batch_size=run.eval_batch_size,
      device_resident=dataset.device_resident,
      preprocess=data.device_preprocess(dataset.name),
      create_pipeline=functools.partial(
          data.create_pipeline, copy.deepcopy(run)
      ),
      batch_shapes=functools.partial(data.batch_shapes, dataset),
      random_batch=lambda batch_size, rng: data.random_batch(
          dataset, batch_size, spec.num_classes, rng
      ),
  )


def _trained_model(
    run: ml_collections.ConfigDict,
    spec: dataset_specs.DatasetSpec,
    method: methods.SparseMethod,
) -> tuple[float, nn.Module, Any, Any, Any]:
  """(width, model, abstract params, sparsities, base model) of the run.

  The method may train another width than the config's (Small-Dense).
  """
  base_model = create_model(run, spec, run.model.width)
  base_params = abstract_variables(base_model, spec)['params']
  sparsities = _structured_sparsities(
      method.structure, get_sparsities(run, base_params), base_params
  )
  _check_sparse_layers(method, sparsities, base_params)
  width = method.model_width(
      run.model.width,
      lambda w: masks_lib.num_params(
          abstract_variables(create_model(run, spec, w), spec)['params']
      ),
      functools.partial(_sparse_model_size, run, base_params),
  )
  if width == run.model.width:
    model, params = base_model, base_params
  else:
    model = create_model(run, spec, width)
    params = abstract_variables(model, spec)['params']
  if not method.uses_masks:
    sparsities = jax.tree.map(lambda _: None, params)
  return width, model, params, sparsities, base_model


def trained_model(
    run: ml_collections.ConfigDict,
) -> tuple[nn.Module, dataset_specs.DatasetSpec]:
  """(the model a resolved config trains, its data set's spec).

  Raises:
    errors.ConfigError: naming the offending key.
  """
  with config_lib.as_config_errors():
    method = methods.from_config(run).for_model(
        models.get(run.model.name).output_layer
    )
    spec = dataset_specs.get_spec(run.dataset)
    _, model, *_ = _trained_model(run, spec, method)
  return model, spec


def build(config: ml_collections.ConfigDict) -> Setup:
  """Resolves, checks and builds everything of ``config`` that needs no data.

  Raises:
    errors.ConfigError: naming the offending key.
  """
  run = config_lib.resolve(config)
  identity = identity_lib.of_config(run)
  with config_lib.as_config_errors():
    _check_devices(run)
    method = methods.from_config(run).for_model(
        models.get(run.model.name).output_layer
    )
    spec = dataset_specs.get_spec(run.dataset)
    _check_model_fits_data(run, spec)
    width, model, params, sparsities, base_model = _trained_model(
        run, spec, method
    )
    learning_rate = optimizers.learning_rate_schedule(run)
    tx = optimizers.create_optimizer(run, learning_rate)
    _check_l2_exclude(run, params)
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
        config=config.to_dict(),
        resolved=run.to_dict(),
        identity=identity,
        intervals=_intervals(run),
        seed=run.seed,
        label_smoothing=run.label_smoothing,
        task=tasks.get(spec.task),
        data=_data_setup(run, spec),
        width=width,
        model=model,
        abstract_params=params,
        sparsities=sparsities,
        method=method,
        learning_rate=learning_rate,
        tx=tx,
        costs=costs,
        warm_start=warm_start.from_config(run, identity),
        compute_dtype=jnp.bfloat16 if run.half_precision else None,
    )


def flops_report(
    config: ml_collections.ConfigDict, layer_sparsities: Any = None
) -> dict[str, Any]:
  """``build(config).costs.report(layer_sparsities)``."""
  return build(config).costs.report(layer_sparsities)
