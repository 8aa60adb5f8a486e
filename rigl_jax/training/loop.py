"""train_and_evaluate(config, workdir): the training loop of every experiment.

The only place that writes metrics and checkpoints. It runs the steps that
``rigl_jax.training.compiled`` compiles for the setup that
``rigl_jax.training.build`` makes of the config; nothing here reads the
config. Everything that can be checked without data or compilation is
checked first, so a bad config fails in seconds. Batches reach the devices
a step ahead of their use, the loop reads nothing back from the devices
between summaries, and the host dispatches at most ``MAX_STEPS_IN_FLIGHT``
steps ahead of the devices.
"""

import collections
import contextlib
import dataclasses
import json
import os
import time
from typing import Any

from absl import logging
from etils import epath
from flax import traverse_util
import jax
from jax.experimental import multihost_utils
import ml_collections

from rigl_jax import errors
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.training import build as build_lib
from rigl_jax.training import checkpoints as train_checkpoints
from rigl_jax.training import compiled as compiled_lib
from rigl_jax.training import metric_writer
from rigl_jax.training import preemption as train_preemption
from rigl_jax.training import processes
from rigl_jax.training import progress as progress_lib
from rigl_jax.training import provenance
from rigl_jax.training import results_file
from rigl_jax.training import steps
from rigl_jax.training import warm_start
from rigl_jax.training import workdir as workdir_lib

# Steps the host may dispatch before the devices have run them. Python
# queues steps far faster than a device runs them; a long queue delays a
# signal's checkpoint by the whole queue, and XLA:CPU's collectives on
# several host devices time out behind it. Two hide the dispatch of the next
# step behind the current one.
MAX_STEPS_IN_FLIGHT = 2


def _host_scalars(tree: dict[str, jax.Array]) -> dict[str, float]:
  return {k: float(v) for k, v in jax.device_get(tree).items()}


def _write_results(workdir: epath.Path, results: dict[str, Any]) -> None:
  """Writes results.json atomically: a reader never sees half a file.

  Raises:
    errors.WorkdirError: it could not be written (naming the file and the
      cause); the final checkpoint holds the run, and the same command
      writes results.json from it once the cause is gone.
  """
  path = workdir / results_file.NAME
  temporary = path.with_name(path.name + '.tmp')
  text = json.dumps(results, indent=2, sort_keys=True, default=str)
  failed = temporary
  try:
    temporary.write_text(text)
    failed = path
    temporary.replace(path)
  except Exception as e:  # pylint: disable=broad-except
    # OSError locally; remote file systems raise their own errors.
    cause = getattr(e, 'strerror', None) or ' '.join(str(e).split())[:300]
    raise errors.WorkdirError(
        f'cannot write {failed}: {cause}. The checkpoint at step '
        f'{results["num_train_steps"]} in {workdir / "checkpoints"} holds '
        'the finished run: once the cause is fixed, the same command '
        f'writes {path} from it without training'
    ) from None


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
  return train_setup(
      build_lib.build(config), workdir, allow_config_change, start_time
  )


def train_setup(
    setup: build_lib.Setup,
    workdir: str,
    allow_config_change: bool = False,
    start_time: float | None = None,
) -> dict[str, Any]:
  """``train_and_evaluate`` of a built setup, in an absolute ``workdir``."""
  start_time = time.time() if start_time is None else start_time
  finished = workdir_lib.finished_results(
      workdir,
      setup.identity,
      setup.intervals.num_train_steps,
      allow_config_change,
  )
  if finished is not None:
    logging.info(
        'The run in %s has finished; its results are in %s.',
        workdir,
        os.path.join(workdir, 'results.json'),
    )
    return finished
  # Loading (or the first download) can take minutes: say so first.
  logging.info('Loading the data...')
  data_start = time.monotonic()
  pipeline = setup.data.create_pipeline(
      process_index=jax.process_index(), process_count=jax.process_count()
  )
  logging.info('Loaded the data in %.1f s.', time.monotonic() - data_start)
  workdir_lib.check_writable(workdir)
  # From here on SIGTERM, Ctrl-C and SIGHUP mean: checkpoint after the
  # current step and stop (a second one: stop now).
  with contextlib.ExitStack() as stack:
    # Process 0 holds the lock for all; if it cannot, every process stops.
    lock = workdir_lib.Lock(workdir)
    processes.decide_on_first(lambda: stack.enter_context(lock))
    preemption = stack.enter_context(
        train_preemption.PreemptionWatch(
            jax.process_count(),
            multihost_utils.reached_preemption_sync_point,
            # A second signal exits at once; the workdir is free again.
            on_abort=lambda: lock.__exit__(None, None, None),
            checkpoint_dir=os.path.join(workdir, 'checkpoints'),
        )
    )
    results = _Run(
        setup, pipeline, epath.Path(workdir), preemption, allow_config_change
    ).train()
    # The paper's cost columns, for the sparsities this run reached.
    results['flops'] = setup.costs.report(
        layer_sparsities=results['sparsity']['layers']
    )
    results['wall_time_s'] = time.time() - start_time
    if jax.process_index() == 0:
      _write_results(epath.Path(workdir), results)
  return results


@dataclasses.dataclass
class _Start:
  """Where a session starts: a checkpoint's state, or the initial one."""

  state: Any
  train_metrics: Any
  previous_train_time: float = 0.0
  history: dict[str, list] = dataclasses.field(
      default_factory=lambda: {'train': [], 'eval': []}
  )
  config_changes: dict[str, Any] = dataclasses.field(default_factory=dict)


def _restore_or_start(
    setup: build_lib.Setup,
    compiled: compiled_lib.CompiledSteps,
    checkpointer: train_checkpoints.Checkpointer,
    allow_config_change: bool,
) -> _Start:
  """The newest checkpoint of this run, else its (warm-started) first state."""
  rng = jax.random.PRNGKey(setup.seed)
  replicated = compiled.shardings.replicated
  restored = checkpointer.restore_latest(
      compiled_lib.abstract(
          jax.eval_shape(compiled.init_state, rng), replicated
      ),
      compiled_lib.abstract(steps.TrainMetrics.empty(), replicated),
      setup.identity,
      allow_config_change,
  )
  if restored is not None:
    state, train_metrics, metadata = restored
    logging.info('Resumed from the checkpoint at step %d.', int(state.step))
    return _Start(
        state,
        train_metrics,
        metadata['train_time_s'],
        metadata.get('history', {'train': [], 'eval': []}),
        metadata['config_changes'],
    )
  state = warm_start.apply(
      setup.warm_start,
      compiled.init_state(rng),
      compiled.init_state,
      lambda tree: jax.device_put(tree, replicated),
  )
  if warm_start.describe(setup.warm_start):
    logging.info(warm_start.describe(setup.warm_start))
  return _Start(state, compiled.empty_metrics(steps.TrainMetrics))


class _Run:
  """One session of a run: restores or starts, trains, evaluates."""

  def __init__(
      self,
      setup: build_lib.Setup,
      pipeline: Any,
      workdir: epath.Path,
      preemption: train_preemption.PreemptionWatch,
      allow_config_change: bool,
  ):
    self.setup = setup
    self.pipeline = pipeline
    self.workdir = workdir
    self.preemption = preemption
    self.allow_config_change = allow_config_change
    self.eval_metrics = None
    self.eval_seconds = 0.0
    # Topology summaries of update steps, written at the next summary.
    self.pending_summaries = []

  def train(self) -> dict[str, Any]:
    """Trains to the end (or a signal); returns the results."""
    setup = self.setup
    shardings = compiled_lib.Shardings.of(compiled_lib.create_mesh())
    self.feed = compiled_lib.create_feed(setup.data, self.pipeline, shardings)
    logging.info('Compiling the steps...')
    self.compiled = compiled_lib.compile_steps(setup, shardings, self.feed)
    logging.info('Compiled the steps in %.1f s.', self.compiled.seconds)
    self.checkpointer = train_checkpoints.Checkpointer(
        os.fspath(self.workdir / 'checkpoints'),
        max_to_keep=setup.intervals.keep_checkpoints,
    )
    self.writer = metric_writer.MetricWriter(
        os.fspath(self.workdir), write_events=jax.process_index() == 0
    )
    try:
      self.start = _restore_or_start(
          setup, self.compiled, self.checkpointer, self.allow_config_change
      )
      self.state = self.start.state
      self.train_metrics = self.start.train_metrics
      self.history = self.start.history
      self._train_steps()
    finally:
      self.feed.close()
      self.checkpointer.close()
      self.writer.close()
    return self._results()

  def _first_summaries(self) -> None:
    """Hyper-parameters and the initial topology, once per run."""
    self.writer.write_hparams(
        {
            k: v
            for k, v in traverse_util.flatten_dict(
                self.setup.config, sep='.'
            ).items()
            if isinstance(v, (int, float, str, bool))
        }
    )
    if self.compiled.summarize is not None:
      self.writer.write_scalars(
          0, _host_scalars(self.compiled.summarize(self.state)), log=False
      )

  def _train_steps(self) -> None:
    """The loop over steps, from the start step to the end."""
    setup, method = self.setup, self.setup.method
    self.start_step = int(self.state.step)
    num_steps = setup.intervals.num_train_steps
    # Compiled once here: eager schedule ops at every summary cost more
    # than the summary.
    self.learning_rate = jax.jit(setup.learning_rate)
    self.learning_rate(self.start_step)
    # Compiled here, not at the first checkpoint inside the loop.
    _all_finite((self.state.params, self.state.opt_state))
    if self.start_step == 0:
      self._first_summaries()
    self.progress = progress_lib.Progress(num_steps, self.start_step)
    self.session_start = time.monotonic()
    # The metrics of the steps dispatched and maybe not yet run.
    in_flight = collections.deque()
    for step in range(self.start_step, num_steps):
      is_update = method.changes_topology and bool(method.is_update_step(step))
      if len(in_flight) == MAX_STEPS_IN_FLIGHT:
        jax.block_until_ready(in_flight.popleft())
      with jax.profiler.StepTraceAnnotation('train', step_num=step):
        self.state, self.train_metrics = self.compiled.train[is_update](
            self.state, self.train_metrics, self.feed.inputs(step)
        )
      in_flight.append(self.train_metrics)
      if is_update and self.compiled.summarize is not None:
        self.pending_summaries.append(
            (step, self.compiled.summarize(self.state))
        )
      self._after_step(step + 1)
    jax.block_until_ready(self.state)
    self.checkpointer.wait_until_finished()
    self.train_seconds = (
        time.monotonic() - self.session_start - self.eval_seconds
    )
    if self.eval_metrics is None:  # Resumed from a finished run.
      self._evaluate()

  def _after_step(self, done: int) -> None:
    """Logs, evaluates, checkpoints or stops when due after step ``done``."""
    intervals = self.setup.intervals
    num_steps = intervals.num_train_steps
    # A clock read: a progress line every few seconds, however far apart
    # the logs are.
    self.progress.update(done, force=done == num_steps)
    if _every(done, intervals.log_every_steps, num_steps):
      self._log(done)
    if _every(done, intervals.eval_every_steps, num_steps):
      eval_start = time.monotonic()
      self._evaluate()
      self.writer.write_scalars(
          done, {f'eval/{k}': v for k, v in self.eval_metrics.items()}
      )
      self.history['eval'].append({'step': done, **self.eval_metrics})
      self.eval_seconds += time.monotonic() - eval_start
    # A signal during the last step: the run finishes instead.
    stop = done < num_steps and self.preemption.should_stop(done)
    if _every(done, intervals.checkpoint_every_steps, num_steps) or stop:
      self._save(done)
    if stop:
      self.checkpointer.wait_until_finished()
      raise errors.Preempted(
          f'preempted after step {done}: the checkpoint at step {done} in '
          f'{self.checkpointer.directory} holds the run; run the same '
          'command to resume.'
      )

  def _log(self, done: int) -> None:
    """Writes the training metrics since the last log and resets them."""
    _check_finite(self.train_metrics, self.checkpointer)
    scalars = {f'train/{k}': v for k, v in self.train_metrics.compute().items()}
    scalars['train/learning_rate'] = float(self.learning_rate(done - 1))
    rate = self.progress.take_rate()
    if rate is not None:
      scalars['steps_per_second'] = rate
    self.writer.write_scalars(done, scalars)
    self.history['train'].append({'step': done, **scalars})
    for update_step, summary in self.pending_summaries:
      self.writer.write_scalars(update_step, _host_scalars(summary), log=False)
    self.pending_summaries = []
    self.train_metrics = self.compiled.empty_metrics(steps.TrainMetrics)

  def _evaluate(self) -> None:
    self.eval_metrics = compiled_lib.evaluate(
        self.compiled, self.state, self.pipeline
    )

  def _save(self, step: int) -> None:
    _check_finite(self.train_metrics, self.checkpointer, self.state, step)
    processes.check_replicas_agree('masks', self.state.masks, step)
    self.checkpointer.save(
        step,
        self.state,
        self.train_metrics,
        {
            'train_time_s': (
                self.start.previous_train_time
                + time.monotonic()
                - self.session_start
                - self.eval_seconds
            ),
            'step': step,
            'identity': self.setup.identity,
            'history': self.history,
        },
    )

  def _results(self) -> dict[str, Any]:
    """The content of results.json (less the FLOPs and wall time)."""
    setup, state = self.setup, self.state
    num_steps = setup.intervals.num_train_steps
    steps_run = num_steps - self.start_step
    masks = jax.device_get(state.masks)
    return {
        'config': setup.config,
        'resolved_config': setup.resolved,
        'eval': self.eval_metrics,
        # Training metrics at every log step, evaluations at every
        # evaluation.
        'history': self.history,
        'sparsity': {
            'overall': masks_lib.overall_sparsity(masks),
            'layers': masks_lib.layer_sparsities(masks),
            'channels': masks_lib.channel_sparsities(masks),
        },
        'topology': {
            'method': setup.method.name,
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
        'compile_time_s': self.compiled.seconds,
        'eval_time_s': self.eval_seconds,
        'train_time_s': self.start.previous_train_time + self.train_seconds,
        # Steps of this session over its training time: compilation, which
        # ends before the loop, and evaluation are left out.
        'steps_per_second': (
            steps_run / self.train_seconds
            if steps_run and self.train_seconds > 0
            else None
        ),
        'num_devices': jax.device_count(),
        'num_processes': jax.process_count(),
        'provenance': provenance.describe(),
        # Result-changing keys that differ from the checkpoint's (resumed
        # with allow_config_change).
        'config_changes': self.start.config_changes,
    }
