"""The pieces of an experiment built from its config, without any data.

Shared by the training loop, the FLOPs counter and the benchmarks: the
model (narrowed for Small-Dense), its abstract parameters, the per-layer
sparsities and the method.
"""

from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from rigl_jax.data import specs as dataset_specs
from rigl_jax.sparse import distributions
from rigl_jax import errors
from rigl_jax.sparse import masks as masks_lib
from rigl_jax import models
from rigl_jax.training import config as run_config
from rigl_jax.sparse.methods import small_dense


def dummy_inputs(spec: dataset_specs.DatasetSpec,
                 batch_size: int = 1) -> np.ndarray:
  """Zeros with the spec's input shape, for ``model.init`` and tracing."""
  return np.zeros((batch_size,) + spec.input_shape, spec.input_dtype)


def abstract_variables(model: nn.Module,
                       spec: dataset_specs.DatasetSpec) -> Any:
  """Shapes and dtypes of all of ``model``'s variables (no computation)."""
  return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                           dummy_inputs(spec), train=False))


def num_params(model: nn.Module, spec: dataset_specs.DatasetSpec) -> int:
  return masks_lib.num_params(abstract_variables(model, spec)['params'])


def get_sparsities(config: ml_collections.ConfigDict, params: Any) -> Any:
  """Per-layer sparsities of ``params`` under the config's distribution.

  Raises:
    ConfigError: naming the key, e.g. a ``dense_layers`` regex that matches
      no parameter.
  """
  try:
    return distributions.get_sparsities(
        params, config.sparsity, config.distribution,
        dense_layers=run_config.effective_dense_layers(config),
        custom_sparsities=run_config.parse_custom_sparsities(
            config.custom_sparsities),
        erk_power_scale=config.erk_power_scale)
  except (ValueError, TypeError) as e:
    raise errors.ConfigError(f'config.{e}') from None


def create_model(config: ml_collections.ConfigDict,
                 width: float | None = None) -> nn.Module:
  """The config's model at ``width`` (default: ``config.model.width``)."""
  spec = dataset_specs.get_spec(config.dataset)
  return models.create_model(
      config.model.name, num_classes=spec.num_classes,
      width=config.model.width if width is None else width,
      **config.model.options.to_dict())


def small_dense_width(config: ml_collections.ConfigDict) -> float:
  """Width at which the dense model has the sparse model's nonzero count."""
  spec = dataset_specs.get_spec(config.dataset)
  sparse_params = abstract_variables(create_model(config), spec)['params']
  target = masks_lib.num_nonzero_params(sparse_params,
                                        get_sparsities(config, sparse_params))
  base = config.model.width
  try:
    factor = small_dense.find_width(
        lambda w: num_params(create_model(config, base * w), spec), target)
  except ValueError as e:
    raise errors.ConfigError(f'config.method: {e}') from None
  return base * factor


def training_width(config: ml_collections.ConfigDict) -> float:
  """The width a run trains at: narrowed for small_dense."""
  if config.method == 'small_dense':
    return small_dense_width(config)
  return config.model.width
