"""train_and_evaluate(config, workdir): the training loop of every experiment.

The only place that jits with shardings, writes metrics and checkpoints.
Data parallelism is expressed with a ``jax.sharding.Mesh`` over all devices
with one 'data' axis: batches are sharded along it, and params, masks and
optimizer state are replicated; XLA inserts the gradient all-reduce. The
same code runs on one CPU, eight host devices or a multi-host TPU slice.
"""

import json
import os
import time
from typing import Any

from absl import logging
from clu import metric_writers
from clu import periodic_actions
import jax
import ml_collections
import numpy as np
import tensorflow as tf

from rigl_jax import data
from rigl_jax import dataset_specs
from rigl_jax import experiment
from rigl_jax import masks as masks_lib
from rigl_jax import methods
from rigl_jax import optimizers
from rigl_jax import run_config
from rigl_jax import steps
from rigl_jax import train_checkpoints
from rigl_jax import train_state as train_state_lib

DATA_AXIS = 'data'


def create_mesh() -> jax.sharding.Mesh:
  """A one-axis mesh over every device of every process."""
  return jax.sharding.Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


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
  with tf.io.gfile.GFile(path + '.tmp', 'w') as f:
    json.dump(content, f, indent=2, sort_keys=True, default=str)
  tf.io.gfile.rename(path + '.tmp', path, overwrite=True)


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> dict[str, Any]:
  """Trains and evaluates ``config``, resuming from ``workdir`` if possible.

  Args:
    config: a run config (see ``rigl_jax.run_config.base_config``).
    workdir: where checkpoints, TensorBoard events and results.json go.

  Returns:
    The content of ``workdir/results.json``.
  """
  start_time = time.time()
  run = run_config.resolve(config)
  is_chief = jax.process_index() == 0
  tf.io.gfile.makedirs(workdir)

  mesh = create_mesh()
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  batch_sharding = jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(DATA_AXIS))
  for key in ('batch_size', 'eval_batch_size'):
    if run[key] % jax.device_count():
      raise run_config.ConfigError(
          f'config.{key}: {run[key]} is not divisible by the number of '
          f'devices ({jax.device_count()})')

  pipeline = data.create_pipeline(run, process_index=jax.process_index(),
                                  process_count=jax.process_count())
  spec = dataset_specs.get_spec(run.dataset)
  width = experiment.training_width(run)
  model = experiment.create_model(run, width)
  abstract_params = experiment.abstract_variables(model, spec)['params']
  sparsities = experiment.get_sparsities(run, abstract_params)
  method = methods.from_config(run)
  tx = optimizers.create_optimizer(run)

  def init_state(rng):
    params_rng, state_rng = jax.random.split(rng)
    variables = model.init(params_rng, experiment.dummy_inputs(spec),
                           train=False)
    return train_state_lib.TrainState.create(
        params=variables['params'], tx=tx, method=method,
        sparsities=sparsities, rng=state_rng,
        batch_stats=variables.get('batch_stats'))

  init_state = jax.jit(init_state, out_shardings=replicated)
  rng = jax.random.PRNGKey(run.seed)
  checkpointer = train_checkpoints.Checkpointer(
      os.path.join(workdir, 'checkpoints'), max_to_keep=run.keep_checkpoints)
  latest = checkpointer.latest_step()
  previous_train_time = 0.0  # Of earlier sessions of this run.
  if latest is None:
    state = init_state(rng)
  else:
    abstract_state = train_checkpoints.with_sharding(
        jax.eval_shape(init_state, rng), replicated)
    state, metadata = checkpointer.restore(latest, abstract_state)
    previous_train_time = metadata['train_time_s']
    logging.info('Resumed from the checkpoint at step %d.', latest)
  start_step = int(state.step)

  train_step = jax.jit(
      steps.make_train_step(model, run.label_smoothing),
      in_shardings=(replicated, batch_sharding),
      out_shardings=(replicated, replicated), donate_argnums=(0,))
  eval_step = jax.jit(steps.make_eval_step(model),
                      in_shardings=(replicated, batch_sharding),
                      out_shardings=replicated)
  summarize_topology = jax.jit(steps.topology_summary,
                               out_shardings=replicated)

  writer = metric_writers.create_default_writer(
      workdir, just_logging=not is_chief)
  if start_step == 0:
    writer.write_hparams({k: v for k, v in _flatten(config.to_dict()).items()
                          if isinstance(v, (int, float, str, bool))})
  report_progress = periodic_actions.ReportProgress(
      num_train_steps=run.num_train_steps, writer=writer)
  if method.uses_masks:
    writer.write_scalars(start_step, _host_scalars(summarize_topology(state)))

  session_start = time.time()

  def save(step: int) -> None:
    elapsed = previous_train_time + time.time() - session_start
    checkpointer.save(step, state, {'train_time_s': elapsed, 'step': step})

  eval_metrics = None
  train_metrics = None
  first_step_end = None
  train_batches = pipeline.train_batches(start_step)
  for step in range(start_step, run.num_train_steps):
    with jax.profiler.StepTraceAnnotation('train', step_num=step):
      batch = _to_global(next(train_batches), batch_sharding)
      state, batch_metrics = train_step(state, batch)
    train_metrics = (batch_metrics if train_metrics is None else
                     train_metrics.merge(batch_metrics))
    done = step + 1
    report_progress(done)
    if method.uses_masks and method.is_update_step(step):
      writer.write_scalars(step, _host_scalars(summarize_topology(state)))
    if done % run.log_every_steps == 0 or done == run.num_train_steps:
      writer.write_scalars(done, {f'train/{k}': float(v) for k, v in
                                  train_metrics.compute().items()})
      train_metrics = None
    if done % run.eval_every_steps == 0 or done == run.num_train_steps:
      eval_metrics = evaluate(eval_step, state, pipeline, batch_sharding)
      writer.write_scalars(done, {f'eval/{k}': v
                                  for k, v in eval_metrics.items()})
    if done % run.checkpoint_every_steps == 0 or done == run.num_train_steps:
      save(done)
    if first_step_end is None:
      jax.block_until_ready(state)
      first_step_end = time.time()
  jax.block_until_ready(state)
  session_end = time.time()
  checkpointer.wait_until_finished()
  checkpointer.close()

  if eval_metrics is None:  # Resumed from a finished run: evaluate once.
    eval_metrics = evaluate(eval_step, state, pipeline, batch_sharding)
  steps_run = run.num_train_steps - start_step
  masks = jax.device_get(state.masks)
  results = {
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
      'width': width,
      'num_params': masks_lib.num_params(abstract_params),
      'nonzero_params': masks_lib.num_active_params(abstract_params, masks),
      'num_train_steps': run.num_train_steps,
      'steps_this_run': steps_run,
      'wall_time_s': time.time() - start_time,
      'train_time_s': previous_train_time + session_end - session_start,
      # From the end of the first step, so compilation is left out.
      'steps_per_second': ((steps_run - 1) / (session_end - first_step_end)
                           if steps_run > 1 else None),
      'num_devices': jax.device_count(),
      'num_processes': jax.process_count(),
  }
  if is_chief:
    _write_json(os.path.join(workdir, 'results.json'), results)
  writer.flush()
  writer.close()
  return results


def _flatten(tree: dict[str, Any], prefix: str = '') -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat
