"""Builds the real train step of a config for a method, and times calls.

Benchmarks measure the code a run executes: the model, optimizer, method
and jitted step come from the config exactly as in ``rigl_jax.train``; only
the batch is synthetic (random inputs of the data set's shape).
"""

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from rigl_jax import dataset_specs
from rigl_jax import experiment
from rigl_jax import methods
from rigl_jax import optimizers
from rigl_jax import run_config
from rigl_jax import steps
from rigl_jax import train_state as train_state_lib


@dataclasses.dataclass
class Bench:
  """A state, a batch and the jitted train steps of one method.

  ``plain_step`` and ``update_step`` are compiled as ``rigl_jax.train``
  compiles them: the state donated, the topology update fixed at trace time
  (``update_step`` is None for methods that never change the topology).
  """
  method: str
  config: ml_collections.ConfigDict
  state: train_state_lib.TrainState
  batch: dict[str, jax.Array]
  plain_step: Callable[..., Any]
  update_step: Optional[Callable[..., Any]]

  def chain(self, step_fn: Callable[..., Any]) -> Callable[[], Any]:
    """A call that runs ``step_fn`` on the state the previous call returned.

    The state is donated, as in training, so every call needs its
    predecessor's output.
    """
    state = jax.tree.map(lambda x: x.copy(), self.state)

    def call():
      nonlocal state
      state, _ = step_fn(state, self.batch)
      return state

    return call


def build(config_path: str, method: str, overrides: dict[str, Any]) -> Bench:
  """The train step of ``config_path`` with ``method`` and ``overrides``."""
  config = run_config.set_values(run_config.load(config_path),
                                 {**overrides, 'method': method})
  run = run_config.resolve(config)
  spec = dataset_specs.get_spec(run.dataset)
  model = experiment.create_model(run, experiment.training_width(run))
  params_shapes = experiment.abstract_variables(model, spec)['params']
  sparsities = experiment.get_sparsities(run, params_shapes)
  method_obj = methods.from_config(run)
  tx = optimizers.create_optimizer(run)

  def init(rng):
    variables = model.init(rng, experiment.dummy_inputs(spec), train=False)
    return train_state_lib.TrainState.create(
        params=variables['params'], tx=tx, method=method_obj,
        sparsities=sparsities, rng=rng,
        batch_stats=variables.get('batch_stats'))

  state = jax.jit(init)(jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  shape = (run.batch_size,) + tuple(spec.input_shape)
  if spec.task == 'language_model':
    inputs = rng.integers(0, spec.num_classes, shape).astype(spec.input_dtype)
    labels = rng.integers(0, spec.num_classes, shape).astype(np.int32)
  else:
    inputs = rng.standard_normal(shape).astype(spec.input_dtype)
    labels = rng.integers(0, spec.num_classes, run.batch_size).astype(np.int32)
  batch = {'inputs': jnp.asarray(inputs), 'labels': jnp.asarray(labels),
           'weights': jnp.ones(labels.shape, jnp.float32)}
  def compile_step(update):
    return jax.jit(steps.make_train_step(model, run.label_smoothing,
                                         topology_update=update),
                   donate_argnums=(0,))

  return Bench(method, run, state, batch, compile_step(False),
               compile_step(True) if method_obj.changes_topology else None)


def time_interleaved(calls: dict[str, Callable[[], Any]], *, warmup: int,
                     repeats: int) -> dict[str, float]:
  """Median seconds of each call, measured round-robin after warm-up.

  Interleaving spreads slow phases of the machine (other processes, thermal
  changes) over every call instead of penalizing whichever ran then.
  """
  for call in calls.values():
    for _ in range(warmup):
      jax.block_until_ready(call())
  times: dict[str, list[float]] = {name: [] for name in calls}
  for _ in range(repeats):
    for name, call in calls.items():
      start = time.perf_counter()
      jax.block_until_ready(call())
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(t) for name, t in times.items()}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '|'.join('---' for _ in header) + '|']
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return '\n'.join(lines)
