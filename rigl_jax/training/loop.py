"""train_and_evaluate(config, workdir): the training loop of every experiment.

The only place that jits with shardings, writes metrics and checkpoints.
Data parallelism is expressed with a ``jax.sharding.Mesh`` over all devices
with one 'data' axis: batches are sharded along it, and params, masks and
optimizer state are replicated; XLA inserts the gradient all-reduce. The
same code runs on one CPU, eight host devices or a multi-host TPU slice.

Everything that can be checked without data or compilation is checked
first, so a bad config fails in seconds. Every step function is compiled
ahead of the loop, batches reach the devices a step ahead of their use,
and the loop reads nothing back from the devices between summaries. The
host dispatches at most ``MAX_STEPS_IN_FLIGHT`` steps ahead of the devices.
"""

import collections
import contextlib
import dataclasses
import functools
import json
import os
import time
from typing import Any, Callable

from absl import logging
from etils import epath
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np

from rigl_jax import data
from rigl_jax import errors
from rigl_jax.data import device_feed
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import train_state as train_state_lib
from rigl_jax.training import build as build_lib
from rigl_jax.training import checkpoints as train_checkpoints
from rigl_jax.training import metric_writer
from rigl_jax.training import optimizers
from rigl_jax.training import preemption as train_preemption
from rigl_jax.training import processes
from rigl_jax.training import progress as progress_lib
from rigl_jax.training import provenance
from rigl_jax.training import steps
from rigl_jax.training import warm_start
from rigl_jax.training import workdir as workdir_lib

DATA_AXIS = 'data'


# Steps the host may dispatch before the devices have run them. Python
# queues steps far faster than a device runs them; a long queue delays a
# signal's checkpoint by the whole queue, and XLA:CPU's collectives on
# several host devices time out behind it. Two hide the dispatch of the next
# step behind the current one.
MAX_STEPS_IN_FLIGHT = 2


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


def _abstract(tree: Any, sharding: jax.sharding.Sharding) -> Any:
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
    run: ml_collections.ConfigDict,
    pipeline: data.pipeline.Pipeline,
    shardings: Shardings,
) -> Any:
  """The training feed: on the devices if the config says so, else streamed."""
  if run.dataset.device_resident:
    return device_feed.Resident(
        pipeline, shardings.replicated, shardings.index_table
    )
  return device_feed.Streamed(
      pipeline, data.batch_shapes(run.dataset, run.batch_size), shardings.batch
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
  summarize: Callable[..., Any] | None
  shardings: Shardings
  seconds: float

  def empty_metrics(self, cls: type[steps.Metrics]) -> steps.Metrics:
    return _metrics_maker(cls, self.shardings.replicated)()


@functools.cache
def _metrics_maker(
    cls: type[steps.Metrics], sharding: Any
) -> Callable[[], Any]:
  """Makes empty metrics on the devices of ``sharding``.

  Jitted: with several processes, device_put of one process's arrays onto
  a sharding over every process's devices gives arrays that orbax cannot
  save (their shards are not single-device arrays).
  """
  return jax.jit(cls.empty, out_shardings=sharding)


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
  run, method = setup.run, setup.method
  replicated = shardings.replicated
  init_state = jax.jit(
      functools.partial(
          _init_state,
          model=setup.model,
          spec=setup.spec,
          tx=setup.tx,
          method=method,
          sparsities=setup.sparsities,
      ),
      out_shardings=replicated,
  )
  state = _abstract(
      jax.eval_shape(init_state, jax.random.PRNGKey(0)), replicated
  )
  train_metrics = _abstract(steps.TrainMetrics.empty(), replicated)
  eval_metrics = _abstract(steps.Metrics.empty(), replicated)
  eval_batch = _abstract(
      data.batch_shapes(run.dataset, run.eval_batch_size), shardings.batch
  )
  # One executable per kind of step: the schedule is a function of the
  # step, known on the host, so choosing costs no transfer from the device;
  # a lax.cond in a single step would slow every step (see TrainState).
  kinds = (False, True) if method.changes_topology else (False,)
  train = {
      update: jax.jit(
          steps.make_train_step(
              setup.model,
              run.label_smoothing,
              topology_update=update,
              preprocess=setup.preprocess,
              seed=run.seed,
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
  evaluate = (
      jax.jit(
          steps.make_eval_step(
              setup.model, setup.preprocess, setup.compute_dtype
          ),
          out_shardings=replicated,
          donate_argnums=(1,),
      )
      .lower(state, eval_metrics, eval_batch)
      .compile()
  )
  summarize = (
      jax.jit(steps.topology_summary, out_shardings=replicated)
      .lower(state)
      .compile()
      if method.uses_masks
      else None
  )
  return CompiledSteps(
      init_state=init_state,
      train=train,
      evaluate=evaluate,
      summarize=summarize,
      shardings=shardings,
      seconds=time.monotonic() - start,
  )


def evaluate(
    compiled: CompiledSteps,
    state: Any,
    pipeline: data.pipeline.Pipeline,
    task: str,
) -> dict[str, float]:
  """Metrics over the complete evaluation split."""
  metrics = compiled.empty_metrics(steps.Metrics)
  batches = device_feed.device_batches(
      pipeline.eval_dataset(), compiled.shardings.batch
  )
  try:
    for batch in batches:
      metrics = compiled.evaluate(state, metrics, batch)
  finally:
    device_feed.close(batches)
  result = metrics.compute()
  if task == 'language_model':
    result['bits_per_char'] = result['loss'] / np.log(2.0)
  return result


def _host_scalars(tree: dict[str, jax.Array]) -> dict[str, float]:
  return {k: float(v) for k, v in jax.device_get(tree).items()}


def _write_json(path: epath.Path, content: dict[str, Any]) -> None:
  """Writes atomically: a reader never sees a half-written file."""
  temporary = path.with_name(path.name + '.tmp')
  temporary.write_text(
      json.dumps(content, indent=2, sort_keys=True, default=str)
  )
  temporary.replace(path)


def _flatten(tree: dict[str, Any], prefix: str = '') -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


_all_finite = jax.jit(steps.all_finite)


def _check_finite(
    train_metrics: steps.TrainMetrics,
    checkpointer: train_checkpoints.Checkpointer,
    state: Any = None,
    step: int = 0,
) -> None:
  """Raises ``DivergenceError`` if a step since the last check was not finite.

  With ``state`` (before a save) its weights and optimizer state are checked
  too: a finite loss can follow the step that overflowed them, and no
  checkpoint may hold them.
  """
  bad_step = train_metrics.first_nonfinite()
  if bad_step != steps.NEVER:
    cause = f'the loss or the gradients became non-finite at step {bad_step}'
  elif state is not None and not bool(
      _all_finite((state.params, state.opt_state))
  ):
    cause = f'the weights or optimizer state were non-finite at step {step}'
  else:
    return
  checkpointer.wait_until_finished()
  saved = checkpointer.all_steps()
  kept = (
      f'the last checkpoint (step {saved[-1]}) in {checkpointer.directory} '
      'is intact'
      if saved
      else 'no checkpoint was written'
  )
  raise errors.DivergenceError(
      f'training diverged: {cause}; {kept}. Lower the learning rate or '
      'change the seed.'
  )


def _every(done: int, interval: int, num_steps: int) -> bool:
  """Whether an action due every ``interval`` steps (and at the end) is due."""
  return done % interval == 0 or done == num_steps


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str,
    allow_config_change: bool = False,
) -> dict[str, Any]:
  """Trains and evaluates ``config``, resuming from ``workdir`` if possible.

  A run that has finished is not run again: its results are returned and
  results.json is left as it is.

  Args:
    config: a run config (see ``rigl_jax.training.config.base_config``).
    workdir: where checkpoints, TensorBoard events and results.json go.
    allow_config_change: resume a run whose config differs in keys that
      change the result (logged, and listed in results.json).

  Returns:
    The content of ``workdir/results.json``.

  Raises:
    errors.RunError: bad config, data or workdir (checked before anything
      is created), divergence, or preemption (after writing a checkpoint).
  """
  start_time = time.time()
  workdir = workdir_lib.resolve(workdir)
  setup = build_lib.build(config)
  finished = workdir_lib.finished_results(
      workdir, setup.run, allow_config_change
  )
  if finished is not None:
    logging.info(
        'The run in %s has finished; its results are in %s.',
        workdir,
        os.path.join(workdir, 'results.json'),
    )
    return finished
  pipeline = data.create_pipeline(
      setup.run,
      process_index=jax.process_index(),
      process_count=jax.process_count(),
  )
  workdir_lib.check_writable(workdir)
  # From here on SIGTERM and Ctrl-C mean: checkpoint after the current step
  # and stop.
  with contextlib.ExitStack() as stack:
    # Process 0 holds the lock for all; if it cannot, every process stops.
    processes.decide_on_first(
        lambda: stack.enter_context(workdir_lib.Lock(workdir))
    )
    preemption = stack.enter_context(
        train_preemption.PreemptionWatch(
            jax.process_count(), multihost_utils.reached_preemption_sync_point
        )
    )
    results = _train(
        config,
        setup,
        pipeline,
        epath.Path(workdir),
        preemption,
        allow_config_change,
    )
    # The paper's cost columns, for the sparsities this run reached.
    results['flops'] = setup.costs.report(
        layer_sparsities=results['sparsity']['layers']
    )
    results['wall_time_s'] = time.time() - start_time
    if jax.process_index() == 0:
      _write_json(epath.Path(workdir) / 'results.json', results)
  return results


def _train(
    config: ml_collections.ConfigDict,
    setup: build_lib.Setup,
    pipeline: Any,
    workdir: epath.Path,
    preemption: train_preemption.PreemptionWatch,
    allow_config_change: bool,
) -> dict[str, Any]:
  """Restores or initializes the state, trains, evaluates; returns results."""
  run, method = setup.run, setup.method
  shardings = Shardings.of(create_mesh())
  feed = create_feed(run, pipeline, shardings)
  compiled = compile_steps(setup, shardings, feed)
  logging.info('Compiled the steps in %.1f s.', compiled.seconds)
  rng = jax.random.PRNGKey(run.seed)

  checkpointer = train_checkpoints.Checkpointer(
      os.fspath(workdir / 'checkpoints'), max_to_keep=run.keep_checkpoints
  )
  identity = train_checkpoints.run_identity(run)
  writer = metric_writer.MetricWriter(
      os.fspath(workdir), write_events=jax.process_index() == 0
  )
  try:
    restored = checkpointer.restore_latest(
        _abstract(
            jax.eval_shape(compiled.init_state, rng), shardings.replicated
        ),
        _abstract(steps.TrainMetrics.empty(), shardings.replicated),
        identity,
        allow_config_change,
    )
    if restored is None:
      state = warm_start.apply(
          run,
          compiled.init_state(rng),
          compiled.init_state,
          lambda tree: jax.device_put(tree, shardings.replicated),
      )
      if warm_start.describe(run):
        logging.info(warm_start.describe(run))
      train_metrics = compiled.empty_metrics(steps.TrainMetrics)
      previous_train_time = 0.0
      history = {'train': [], 'eval': []}
      config_changes = {}
    else:
      state, train_metrics, metadata = restored
      previous_train_time = metadata['train_time_s']
      history = metadata.get('history', {'train': [], 'eval': []})
      config_changes = metadata['config_changes']
      logging.info('Resumed from the checkpoint at step %d.', int(state.step))
    start_step = int(state.step)
    num_steps = run.num_train_steps
    # Compiled once here: eager schedule ops at every summary cost more
    # than the summary.
    learning_rate = jax.jit(optimizers.learning_rate_schedule(run))
    learning_rate(start_step)
    if start_step == 0:
      writer.write_hparams(
          {
              k: v
              for k, v in _flatten(config.to_dict()).items()
              if isinstance(v, (int, float, str, bool))
          }
      )
      if compiled.summarize is not None:
        writer.write_scalars(
            0, _host_scalars(compiled.summarize(state)), log=False
        )

    progress = progress_lib.Progress(num_steps, start_step)
    # Topology summaries of update steps, written at the next summary.
    pending_summaries = []
    eval_metrics = None
    eval_seconds = 0.0
    session_start = time.monotonic()

    def save(step: int) -> None:
      _check_finite(train_metrics, checkpointer, state, step)
      processes.check_replicas_agree('masks', state.masks, step)
      checkpointer.save(
          step,
          state,
          train_metrics,
          {
              'train_time_s': (
                  previous_train_time
                  + time.monotonic()
                  - session_start
                  - eval_seconds
              ),
              'step': step,
              'identity': identity,
              'history': history,
          },
      )

    # The metrics of the steps dispatched and maybe not yet run.
    in_flight = collections.deque()
    for step in range(start_step, num_steps):
      is_update = method.changes_topology and bool(method.is_update_step(step))
      if len(in_flight) == MAX_STEPS_IN_FLIGHT:
        jax.block_until_ready(in_flight.popleft())
      with jax.profiler.StepTraceAnnotation('train', step_num=step):
        state, train_metrics = compiled.train[is_update](
            state, train_metrics, feed.inputs(step)
        )
      in_flight.append(train_metrics)
      if is_update and compiled.summarize is not None:
        pending_summaries.append((step, compiled.summarize(state)))
      done = step + 1
      if _every(done, run.log_every_steps, num_steps):
        _check_finite(train_metrics, checkpointer)
        scalars = {f'train/{k}': v for k, v in train_metrics.compute().items()}
        scalars['train/learning_rate'] = float(learning_rate(step))
        rate = progress.update(done, force=done == num_steps)
        if rate is not None:
          scalars['steps_per_second'] = rate
        writer.write_scalars(done, scalars)
        history['train'].append({'step': done, **scalars})
        for update_step, summary in pending_summaries:
          writer.write_scalars(update_step, _host_scalars(summary), log=False)
        pending_summaries = []
        train_metrics = compiled.empty_metrics(steps.TrainMetrics)
      if _every(done, run.eval_every_steps, num_steps):
        eval_start = time.monotonic()
        eval_metrics = evaluate(compiled, state, pipeline, setup.spec.task)
        writer.write_scalars(
            done, {f'eval/{k}': v for k, v in eval_metrics.items()}
        )
        history['eval'].append({'step': done, **eval_metrics})
        eval_seconds += time.monotonic() - eval_start
      # A signal during the last step: the run finishes instead.
      stop = done < num_steps and preemption.should_stop(done)
      if _every(done, run.checkpoint_every_steps, num_steps) or stop:
        save(done)
      if stop:
        checkpointer.wait_until_finished()
        raise errors.Preempted(
            f'preempted after step {done}: the checkpoint at step {done} in '
            f'{checkpointer.directory} holds the run; run the same command '
            'to resume.'
        )
    jax.block_until_ready(state)
    checkpointer.wait_until_finished()
    train_seconds = time.monotonic() - session_start - eval_seconds
    if eval_metrics is None:  # Resumed from a finished run: evaluate once.
      eval_metrics = evaluate(compiled, state, pipeline, setup.spec.task)
  finally:
    feed.close()
    checkpointer.close()
    writer.close()

  steps_run = num_steps - start_step
  masks = jax.device_get(state.masks)
  return {
      'config': config.to_dict(),
      'resolved_config': run.to_dict(),
      'eval': eval_metrics,
      # Training metrics at every log step, evaluations at every evaluation.
      'history': history,
      'sparsity': {
          'overall': masks_lib.overall_sparsity(masks),
          'layers': masks_lib.layer_sparsities(masks),
      },
      'topology': {
          'method': method.name,
          'updates': int(state.topology_stats.num_updates),
          'exploration_rate': float(
              state.topology_stats.exploration_rate(state.masks)
          ),
      },
      'width': setup.width,
      'num_params': masks_lib.num_params(setup.abstract_params),
      'nonzero_params': masks_lib.num_active_params(
          setup.abstract_params, masks
      ),
      'num_train_steps': num_steps,
      'steps_this_run': steps_run,
      'compile_time_s': compiled.seconds,
      'eval_time_s': eval_seconds,
      'train_time_s': previous_train_time + train_seconds,
      # Steps of this session over its training time: compilation, which
      # ends before the loop, and evaluation are left out.
      'steps_per_second': (
          steps_run / train_seconds if steps_run and train_seconds > 0 else None
      ),
      'num_devices': jax.device_count(),
      'num_processes': jax.process_count(),
      'provenance': provenance.describe(),
      # Result-changing keys that differ from the checkpoint's (resumed with
      # allow_config_change).
      'config_changes': config_changes,
  }
