"""train_and_evaluate(config, workdir): the training loop of every experiment.

The only place that jits with shardings, writes metrics and checkpoints.
Data parallelism is expressed with a ``jax.sharding.Mesh`` over all devices
with one 'data' axis: batches are sharded along it, and params, masks and
optimizer state are replicated; XLA inserts the gradient all-reduce. The
same code runs on one CPU, eight host devices or a multi-host TPU slice.

Everything that can be checked without data or compilation is checked
first, so a bad config fails in seconds.
"""

import dataclasses
import functools
import json
import os
import time
from typing import Any

from absl import logging
from clu import metric_writers
from clu import periodic_actions
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np
import tensorflow as tf

from rigl_jax import data
from rigl_jax import dataset_specs
from rigl_jax import errors
from rigl_jax import experiment
from rigl_jax import flops
from rigl_jax import masks as masks_lib
from rigl_jax import methods
from rigl_jax import optimizers
from rigl_jax import run_config
from rigl_jax import steps
from rigl_jax import train_checkpoints
from rigl_jax import train_preemption
from rigl_jax import train_state as train_state_lib

DATA_AXIS = 'data'


def create_mesh() -> jax.sharding.Mesh:
  """A one-axis mesh over every device of every process."""
  return jax.sharding.Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def _check_divisible_by_devices(config: ml_collections.ConfigDict) -> None:
  for key in ('batch_size', 'eval_batch_size'):
    if config[key] % jax.device_count():
      raise errors.ConfigError(
          f'config.{key}: {config[key]} is not divisible by the number of '
          f'devices ({jax.device_count()})')


def _to_global(batch: dict[str, np.ndarray],
               sharding: jax.sharding.Sharding) -> dict[str, jax.Array]:
  """This process's slice of a batch as global arrays sharded on 'data'."""
  return {k: jax.make_array_from_process_local_data(sharding, v)
          for k, v in batch.items()}


def evaluate(eval_step, state, pipeline, sharding) -> dict[str, float]:
  """Metrics over the complete evaluation split."""
  total = None
  for batch in pipeline.eval_batches():
    batch_metrics = eval_step(state, _to_global(batch, sharding))
    total = batch_metrics if total is None else total.merge(batch_metrics)
  result = {k: float(v) for k, v in total.compute().items()}
  if pipeline.task == 'language_model':
    result['bits_per_char'] = result['loss'] / np.log(2.0)
  return result


def _host_scalars(tree: dict[str, jax.Array]) -> dict[str, float]:
  return {k: float(v) for k, v in jax.device_get(tree).items()}


def _write_json(path: str, content: dict[str, Any]) -> None:
  """Writes atomically: a reader never sees a half-written file."""
  with tf.io.gfile.GFile(path + '.tmp', 'w') as f:
    json.dump(content, f, indent=2, sort_keys=True, default=str)
  tf.io.gfile.rename(path + '.tmp', path, overwrite=True)


def _flatten(tree: dict[str, Any], prefix: str = '') -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def _check_finite(train_metrics: steps.TrainMetrics,
                  checkpointer: train_checkpoints.Checkpointer) -> None:
  """Raises ``DivergenceError`` if a step since the last check was not finite."""
  bad_step = int(train_metrics.first_nonfinite_step.compute())
  if bad_step == steps.NEVER:
    return
  checkpointer.wait_until_finished()
  saved = checkpointer.all_steps()
  kept = (f'the last checkpoint (step {saved[-1]}) in {checkpointer.directory} '
          'is intact' if saved else 'no checkpoint was written')
  raise errors.DivergenceError(
      f'training diverged: the loss or the gradients became non-finite at '
      f'step {bad_step}; {kept}. Lower the learning rate or change the seed.')


def _init_state(rng, *, model, spec, tx, method, sparsities):
  params_rng, state_rng = jax.random.split(rng)
  variables = model.init(params_rng, experiment.dummy_inputs(spec),
                         train=False)
  return train_state_lib.TrainState.create(
      params=variables['params'], tx=tx, method=method, sparsities=sparsities,
      rng=state_rng, batch_stats=variables.get('batch_stats'))


@dataclasses.dataclass(frozen=True)
class _Setup:
  """What a run is made of, built and checked from its config alone."""
  run: ml_collections.ConfigDict  # resolved
  spec: dataset_specs.DatasetSpec
  width: float
  model: Any
  abstract_params: Any
  sparsities: Any
  method: methods.SparseMethod
  tx: Any


def _set_up(config: ml_collections.ConfigDict) -> _Setup:
  """Validates the config and builds everything that needs no data."""
  run = run_config.resolve(config)
  _check_divisible_by_devices(run)
  spec = dataset_specs.get_spec(run.dataset)
  width = experiment.training_width(run)
  model = experiment.create_model(run, width)
  abstract_params = experiment.abstract_variables(model, spec)['params']
  return _Setup(run=run, spec=spec, width=width, model=model,
                abstract_params=abstract_params,
                sparsities=experiment.get_sparsities(run, abstract_params),
                method=methods.from_config(run),
                tx=optimizers.create_optimizer(run))


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> dict[str, Any]:
  """Trains and evaluates ``config``, resuming from ``workdir`` if possible.

  Args:
    config: a run config (see ``rigl_jax.run_config.base_config``).
    workdir: where checkpoints, TensorBoard events and results.json go.

  Returns:
    The content of ``workdir/results.json``.

  Raises:
    errors.RunError: bad config or data, an incompatible workdir,
      divergence, or preemption (after writing a checkpoint).
  """
  start_time = time.time()
  setup = _set_up(config)
  # From here on SIGTERM means: checkpoint after the current step and stop.
  with train_preemption.PreemptionWatch(
      jax.process_count(),
      multihost_utils.reached_preemption_sync_point) as preemption:
    results = _train(config, setup, workdir, preemption)
  # The paper's cost columns, for the sparsities this run reached.
  results['flops'] = flops.flops_report(
      config, layer_sparsities=results['sparsity']['layers'])
  results['wall_time_s'] = time.time() - start_time
  if jax.process_index() == 0:
    _write_json(os.path.join(workdir, 'results.json'), results)
  return results


def _train(config: ml_collections.ConfigDict, setup: _Setup, workdir: str,
           preemption: train_preemption.PreemptionWatch) -> dict[str, Any]:
  """Restores or initializes the state, trains, evaluates; returns results."""
  run, method = setup.run, setup.method
  mesh = create_mesh()
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  batch_sharding = jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(DATA_AXIS))
  init_state = jax.jit(
      functools.partial(_init_state, model=setup.model, spec=setup.spec,
                        tx=setup.tx, method=method,
                        sparsities=setup.sparsities),
      out_shardings=replicated)
  rng = jax.random.PRNGKey(run.seed)
  empty_metrics = jax.device_put(steps.TrainMetrics.empty(), replicated)

  tf.io.gfile.makedirs(workdir)
  checkpointer = train_checkpoints.Checkpointer(
      os.path.join(workdir, 'checkpoints'), max_to_keep=run.keep_checkpoints)
  identity = train_checkpoints.run_identity(run)
  writer = metric_writers.create_default_writer(
      workdir, just_logging=jax.process_index() > 0)
  try:
    restored = checkpointer.restore_latest(
        train_checkpoints.with_sharding(jax.eval_shape(init_state, rng),
                                        replicated),
        train_checkpoints.with_sharding(jax.eval_shape(lambda: empty_metrics),
                                        replicated), identity)
    if restored is None:
      state, train_metrics = init_state(rng), empty_metrics
      previous_train_time = 0.0
    else:
      state, train_metrics, metadata = restored
      previous_train_time = metadata['train_time_s']
      logging.info('Resumed from the checkpoint at step %d.', int(state.step))
    start_step = int(state.step)

    pipeline = data.create_pipeline(run, process_index=jax.process_index(),
                                    process_count=jax.process_count())
    # One compiled step per kind: the schedule is a function of the step,
    # known here, so choosing costs no transfer from the device; a lax.cond
    # in a single step would slow every step (see TrainState).
    train_steps = {
        update: jax.jit(
            steps.make_train_step(setup.model, run.label_smoothing,
                                  topology_update=update),
            in_shardings=(replicated, batch_sharding),
            out_shardings=(replicated, replicated), donate_argnums=(0,))
        for update in ((False, True) if method.changes_topology else
                       (False,))
    }
    eval_step = jax.jit(steps.make_eval_step(setup.model),
                        in_shardings=(replicated, batch_sharding),
                        out_shardings=replicated)
    summarize_topology = jax.jit(steps.topology_summary,
                                 out_shardings=replicated)

    if start_step == 0:
      writer.write_hparams({k: v for k, v in _flatten(config.to_dict()).items()
                            if isinstance(v, (int, float, str, bool))})
      if method.uses_masks:
        writer.write_scalars(0, _host_scalars(summarize_topology(state)))
    report_progress = periodic_actions.ReportProgress(
        num_train_steps=run.num_train_steps, writer=writer)
    session_start = time.time()

    def save(step: int) -> None:
      _check_finite(train_metrics, checkpointer)
      checkpointer.save(step, state, train_metrics, {
          'train_time_s': previous_train_time + time.time() - session_start,
          'step': step,
          'identity': identity,
      })

    eval_metrics = None
    first_step_end = None
    num_steps = run.num_train_steps
    train_batches = pipeline.train_batches(start_step)
    for step in range(start_step, num_steps):
      is_update = method.changes_topology and bool(
          method.is_update_step(step))
      with jax.profiler.StepTraceAnnotation('train', step_num=step):
        batch = _to_global(next(train_batches), batch_sharding)
        state, batch_metrics = train_steps[is_update](state, batch)
      train_metrics = train_metrics.merge(batch_metrics)
      done = step + 1
      report_progress(done)
      if is_update:
        writer.write_scalars(step, _host_scalars(summarize_topology(state)))
      if done % run.log_every_steps == 0 or done == num_steps:
        _check_finite(train_metrics, checkpointer)
        computed = train_metrics.compute()
        writer.write_scalars(done, {
            f'train/{k}': float(computed[k]) for k in ('loss', 'accuracy')})
        train_metrics = empty_metrics
      if done % run.eval_every_steps == 0 or done == num_steps:
        eval_metrics = evaluate(eval_step, state, pipeline, batch_sharding)
        writer.write_scalars(done, {f'eval/{k}': v
                                    for k, v in eval_metrics.items()})
      stop = preemption.should_stop(done)
      if done % run.checkpoint_every_steps == 0 or done == num_steps or stop:
        save(done)
      if stop:
        checkpointer.wait_until_finished()
        raise errors.Preempted(
            f'preempted after step {done}: the checkpoint at step {done} in '
            f'{checkpointer.directory} holds the run; run the same command '
            'to resume.')
      if first_step_end is None:
        jax.block_until_ready(state)
        first_step_end = time.time()
    jax.block_until_ready(state)
    session_end = time.time()
    checkpointer.wait_until_finished()
    if eval_metrics is None:  # Resumed from a finished run: evaluate once.
      eval_metrics = evaluate(eval_step, state, pipeline, batch_sharding)
  finally:
    checkpointer.close()
    writer.close()

  steps_run = num_steps - start_step
  masks = jax.device_get(state.masks)
  return {
      'config': config.to_dict(),
      'resolved_config': run.to_dict(),
      'eval': eval_metrics,
      'sparsity': {
          'overall': masks_lib.overall_sparsity(masks),
          'layers': masks_lib.layer_sparsities(masks),
      },
      'topology': {
          'method': method.name,
          'updates': int(state.topology_stats.num_updates),
          'exploration_rate': float(
              state.topology_stats.exploration_rate(state.masks)),
      },
      'width': setup.width,
      'num_params': masks_lib.num_params(setup.abstract_params),
      'nonzero_params': masks_lib.num_active_params(setup.abstract_params,
                                                    masks),
      'num_train_steps': num_steps,
      'steps_this_run': steps_run,
      'train_time_s': previous_train_time + session_end - session_start,
      # From the end of the first step, so compilation is left out.
      'steps_per_second': ((steps_run - 1) / (session_end - first_step_end)
                           if steps_run > 1 else None),
      'num_devices': jax.device_count(),
      'num_processes': jax.process_count(),
  }
