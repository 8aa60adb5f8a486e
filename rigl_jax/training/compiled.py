"""The compile layer: a run's steps jitted with shardings, ahead of its loop.

Data parallelism is expressed with a ``jax.sharding.Mesh`` over all devices
with one 'data' axis: batches are sharded along it, and params, masks and
optimizer state are replicated; XLA inserts the gradient all-reduce. The
same code runs on one CPU, eight host devices or a multi-host TPU slice.
Every step is compiled from shapes alone, before the first one runs; the
training loop (``rigl_jax.training.loop``) and the benchmarks run them.
"""

import dataclasses
import functools
import time
from typing import Any, Callable

import jax
import numpy as np

from rigl_jax import data
from rigl_jax.data import device_feed
from rigl_jax.sparse import train_state as train_state_lib
from rigl_jax.training import build as build_lib
from rigl_jax.training import steps
from rigl_jax.training import tasks

DATA_AXIS = 'data'


def create_mesh() -> jax.sharding.Mesh:
  """A one-axis mesh over every device of every process."""
  return jax.sharding.Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def _init_state(rng, *, model, spec, tx, method, sparsities):
  params_rng, state_rng = jax.random.split(rng)
  variables = model.init(params_rng, build_lib.dummy_inputs(spec), train=False)
  return train_state_lib.TrainState.create(
      params=variables['params'],
      tx=tx,
      method=method,
      sparsities=sparsities,
      rng=state_rng,
      batch_stats=variables.get('batch_stats'),
  )


def abstract(tree: Any, sharding: jax.sharding.Sharding) -> Any:
  """Shapes and dtypes of ``tree``, placed with ``sharding``."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree
  )


@dataclasses.dataclass(frozen=True)
class Shardings:
  """Where a run's arrays live on the mesh."""

  replicated: jax.sharding.Sharding  # state, metrics, resident data
  batch: jax.sharding.Sharding  # batches: split on 'data'
  index_table: jax.sharding.Sharding  # [steps, batch]: split on 'data'

  @classmethod
  def of(cls, mesh: jax.sharding.Mesh) -> 'Shardings':
    spec = jax.sharding.PartitionSpec
    return cls(
        jax.sharding.NamedSharding(mesh, spec()),
        jax.sharding.NamedSharding(mesh, spec(DATA_AXIS)),
        jax.sharding.NamedSharding(mesh, spec(None, DATA_AXIS)),
    )


def create_feed(
    setup: build_lib.DataSetup,
    pipeline: data.pipeline.Pipeline,
    shardings: Shardings,
) -> Any:
  """The training feed: on the devices if the setup says so, else streamed."""
  if setup.device_resident:
    return device_feed.Resident(
        pipeline, shardings.replicated, shardings.index_table
    )
  return device_feed.Streamed(
      pipeline, setup.batch_shapes(setup.batch_size), shardings.batch
  )


@dataclasses.dataclass(frozen=True)
class CompiledSteps:
  """The executables of a run, compiled before its first step.

  Attributes:
    init_state: rng -> the initial TrainState (replicated).
    train: {topology_update: (state, metrics, inputs) -> (state, metrics)}
      for the feed's inputs; the state is donated. Methods that never change
      the topology have only the False entry.
    evaluate: (state, metrics, batch) -> metrics.
    summarize: state -> topology scalars, or None for dense methods.
    shardings: where state, metrics and batches live.
    seconds: the time compiling took.
  """

  init_state: Callable[..., Any]
  train: dict[bool, Callable[..., Any]]
  evaluate: Callable[..., Any]
  empty_eval_metrics: Callable[[], steps.EvalMetrics]
  task: tasks.Task
  summarize: Callable[..., Any] | None
  shardings: Shardings
  seconds: float

  def empty_metrics(self, cls: type[steps.TrainMetrics]) -> steps.TrainMetrics:
    return _metrics_maker(cls.empty, self.shardings.replicated)()


@functools.cache
def _metrics_maker(
    empty: Callable[[], Any], sharding: Any
) -> Callable[[], Any]:
  """Makes empty metrics on the devices of ``sharding``.

  Jitted: with several processes, device_put of one process's arrays onto
  a sharding over every process's devices gives arrays that orbax cannot
  save (their shards are not single-device arrays).
  """
  return jax.jit(empty, out_shardings=sharding)


def _compile_train_steps(
    setup: build_lib.Setup,
    shardings: Shardings,
    feed: Any,
    state: Any,
    train_metrics: Any,
) -> dict[bool, Callable[..., Any]]:
  """{topology_update: train step} for the feed's inputs.

  One executable per kind of step: the schedule is a function of the step,
  known on the host, so choosing costs no transfer from the device; a
  lax.cond in a single step would slow every step (see TrainState).
  """
  replicated = shardings.replicated
  kinds = (False, True) if setup.method.changes_topology else (False,)
  return {
      update: jax.jit(
          steps.make_train_step(
              setup.model,
              setup.label_smoothing,
              topology_update=update,
              preprocess=setup.preprocess,
              seed=setup.seed,
              load_batch=feed.batch,
              compute_dtype=setup.compute_dtype,
          ),
          out_shardings=(replicated, replicated),
          # The metrics are not donated: the loop waits on an earlier
          # step's to bound the steps in flight.
          donate_argnums=(0,),
      )
      .lower(state, train_metrics, feed.abstract_inputs())
      .compile()
      for update in kinds
  }


def _compile_evaluation(
    setup: build_lib.Setup, shardings: Shardings, state: Any
) -> tuple[Callable[[], Any], Callable[..., Any]]:
  """(empty eval metrics, eval step) of the setup's task, compiled."""
  replicated = shardings.replicated
  eval_batch = abstract(
      setup.data.batch_shapes(setup.data.eval_batch_size), shardings.batch
  )
  empty_eval_metrics = (
      jax.jit(
          functools.partial(steps.EvalMetrics.empty, setup.task),
          out_shardings=replicated,
      )
      .lower()
      .compile()
  )
  evaluate_step = (
      jax.jit(
          steps.make_eval_step(
              setup.model, setup.task, setup.preprocess, setup.compute_dtype
          ),
          out_shardings=replicated,
          donate_argnums=(1,),
      )
      .lower(
          state,
          abstract(steps.EvalMetrics.empty(setup.task), replicated),
          eval_batch,
      )
      .compile()
  )
  return empty_eval_metrics, evaluate_step


def compile_steps(
    setup: build_lib.Setup, shardings: Shardings, feed: Any
) -> CompiledSteps:
  """Compiles every step of ``setup`` from shapes alone (no state).

  Args:
    setup: the run's pieces.
    shardings: where state, metrics and batches live.
    feed: a ``device_feed`` feed: the train steps take its inputs.
  """
  start = time.monotonic()
  replicated = shardings.replicated
  init_state = jax.jit(
      functools.partial(
          _init_state,
          model=setup.model,
          spec=setup.spec,
          tx=setup.tx,
          method=setup.method,
          sparsities=setup.sparsities,
      ),
      out_shardings=replicated,
  )
  state = abstract(
      jax.eval_shape(init_state, jax.random.PRNGKey(0)), replicated
  )
  empty_eval_metrics, evaluate_step = _compile_evaluation(
      setup, shardings, state
  )
  summarize = (
      jax.jit(steps.topology_summary, out_shardings=replicated)
      .lower(state)
      .compile()
      if setup.method.uses_masks
      else None
  )
  train = _compile_train_steps(
      setup,
      shardings,
      feed,
      state,
      abstract(steps.TrainMetrics.empty(), replicated),
  )
  return CompiledSteps(
      init_state=init_state,
      train=train,
      evaluate=evaluate_step,
      empty_eval_metrics=empty_eval_metrics,
      task=setup.task,
      summarize=summarize,
      shardings=shardings,
      seconds=time.monotonic() - start,
  )


def evaluate(
    compiled: CompiledSteps, state: Any, pipeline: data.pipeline.Pipeline
) -> dict[str, float]:
  """The task's metrics over the complete evaluation split."""
  metrics = compiled.empty_eval_metrics()
  batches = device_feed.device_batches(
      pipeline.eval_dataset(), compiled.shardings.batch
  )
  try:
    for batch in batches:
      metrics = compiled.evaluate(state, metrics, batch)
  finally:
    device_feed.close(batches)
  return compiled.task.metrics(metrics.means())
