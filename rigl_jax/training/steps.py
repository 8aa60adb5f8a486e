"""The per-step computations of a run: train step, eval step, summaries.

Pure functions; ``compiled.py`` jits them with shardings. Batches are dicts
with 'inputs', 'labels' and 'weights' (0 for padding) as the pipeline
delivers them; the data set's device preprocessing turns them into model
inputs inside the step. Labels may have any rank (class per image, byte
per position). Metrics accumulate inside the steps, so the training loop
touches no device value between summaries.
"""

from typing import Any, Callable, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rigl_jax.sparse import train_state as train_state_lib
from rigl_jax.sparse import tree_paths
from rigl_jax.training import tasks

Batch = dict[str, jax.Array]
TrainState = train_state_lib.TrainState
# (batch, rng, train) -> batch of model inputs.
DevicePreprocess = Callable[[Batch, jax.Array, bool], Batch]
# (step inputs, step) -> the step's batch (see rigl_jax.data.device_feed).
BatchLoader = Callable[[Any, jax.Array], Batch]

# No non-finite step seen (int32 max).
NEVER = np.iinfo(np.int32).max
# Folded into the run's seed for the data augmentation key of each step.
_AUGMENTATION_STREAM = 0x5EED
# Separates the dropout keys from the augmentation keys of the same seed.
_DROPOUT_STREAM = 0xD80


@flax.struct.dataclass
class Metrics:
  """Sums over weighted labels: loss (nats), correct predictions, weight."""

  loss_sum: jax.Array
  correct_sum: jax.Array
  weight_sum: jax.Array

  @classmethod
  def empty(cls) -> 'Metrics':
    return cls(*(jnp.zeros((), jnp.float32) for _ in range(3)))

  def add(
      self, per_label_loss: jax.Array, correct: jax.Array, weights: jax.Array
  ) -> 'Metrics':
    return self.replace(
        loss_sum=self.loss_sum + jnp.sum(per_label_loss * weights),
        correct_sum=self.correct_sum + jnp.sum(correct * weights),
        weight_sum=self.weight_sum + jnp.sum(weights),
    )

  def compute(self) -> dict[str, float]:
    """Mean loss and accuracy per weighted label (fetches to the host)."""
    loss_sum, correct_sum, weight_sum = (
        float(x)
        for x in jax.device_get(
            (self.loss_sum, self.correct_sum, self.weight_sum)
        )
    )
    weight = max(weight_sum, 1e-30)
    return {'loss': loss_sum / weight, 'accuracy': correct_sum / weight}


@flax.struct.dataclass
class TrainMetrics(Metrics):
  """Training metrics, and where training first became non-finite."""

  first_nonfinite_step: jax.Array = None

  @classmethod
  def empty(cls) -> 'TrainMetrics':
    return cls(
        *(jnp.zeros((), jnp.float32) for _ in range(3)),
        first_nonfinite_step=jnp.asarray(NEVER, jnp.int32),
    )

  def record_finite(self, step: jax.Array, finite: jax.Array) -> 'TrainMetrics':
    return self.replace(
        first_nonfinite_step=jnp.minimum(
            self.first_nonfinite_step,
            jnp.where(finite, NEVER, step).astype(jnp.int32),
        )
    )

  def first_nonfinite(self) -> int:
    """The earliest non-finite step, or ``NEVER`` (fetches to the host)."""
    return int(jax.device_get(self.first_nonfinite_step))


@flax.struct.dataclass
class EvalMetrics:
  """Sums of a task's label metrics over weighted labels, and the weight."""

  sums: dict[str, jax.Array]
  weight_sum: jax.Array

  @classmethod
  def empty(cls, task: tasks.Task) -> 'EvalMetrics':
    zero = lambda: jnp.zeros((), jnp.float32)
    return cls({name: zero() for name in task.label_metrics}, zero())

  def add(
      self, values: dict[str, jax.Array], weights: jax.Array
  ) -> 'EvalMetrics':
    return self.replace(
        sums={
            name: total + jnp.sum(values[name] * weights)
            for name, total in self.sums.items()
        },
        weight_sum=self.weight_sum + jnp.sum(weights),
    )

  def means(self) -> dict[str, float]:
    """Each label metric's mean per weighted label (fetches to the host)."""
    sums, weight_sum = jax.device_get((self.sums, self.weight_sum))
    weight = max(float(weight_sum), 1e-30)
    return {name: float(total) / weight for name, total in sums.items()}


def all_finite(tree: Any) -> jax.Array:
  """Whether every entry of every leaf of ``tree`` is finite."""
  return jnp.all(
      jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)])
  )


def apply_model(
    model: nn.Module,
    params: Any,
    batch_stats: Optional[Any],
    inputs: jax.Array,
    train: bool,
    dropout_rng: Optional[jax.Array] = None,
    compute_dtype: Optional[jnp.dtype] = None,
) -> tuple[jax.Array, Any]:
  """Float32 logits, and the updated BatchNorm statistics when training.

  ``dropout_rng`` feeds the models' dropout layers when training. With a
  ``compute_dtype`` (bfloat16 for mixed precision) the params and floating
  inputs are cast to it for this pass, so activations and matmuls run in it;
  the params themselves, their gradients and the BatchNorm statistics stay
  float32.
  """
  if compute_dtype is not None:
    params = cast_floating(params, compute_dtype)
    inputs = cast_floating(inputs, compute_dtype)
  variables = {'params': params}
  rngs = {'dropout': dropout_rng} if train and dropout_rng is not None else {}
  if batch_stats is None:
    logits = model.apply(variables, inputs, train=train, rngs=rngs)
    return logits.astype(jnp.float32), None
  variables['batch_stats'] = batch_stats
  if not train:
    logits = model.apply(variables, inputs, train=False)
    return logits.astype(jnp.float32), batch_stats
  logits, updates = model.apply(
      variables, inputs, train=True, mutable=['batch_stats'], rngs=rngs
  )
  return logits.astype(jnp.float32), updates['batch_stats']


def cast_floating(tree: Any, dtype: jnp.dtype) -> Any:
  """``tree`` with its floating-point leaves cast to ``dtype``."""
  return jax.tree.map(
      lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x,
      tree,
  )


def _no_preprocessing(batch: Batch, rng: jax.Array, train: bool) -> Batch:
  del rng, train
  return batch


def _batch_as_given(inputs: Batch, step: jax.Array) -> Batch:
  del step
  return inputs


def augmentation_key(seed: int, step: jax.Array) -> jax.Array:
  """The data augmentation key of ``step``: a function of (seed, step)."""
  return jax.random.fold_in(
      jax.random.fold_in(jax.random.key(seed), _AUGMENTATION_STREAM), step
  )


def dropout_key(seed: int, step: jax.Array) -> jax.Array:
  """The dropout key of ``step``: a function of (seed, step)."""
  return jax.random.fold_in(
      jax.random.fold_in(jax.random.key(seed), _DROPOUT_STREAM), step
  )


def make_train_step(
    model: nn.Module,
    label_smoothing: float,
    topology_update: Optional[bool] = None,
    preprocess: DevicePreprocess = _no_preprocessing,
    seed: int = 0,
    load_batch: BatchLoader = _batch_as_given,
    compute_dtype: Optional[jnp.dtype] = None,
) -> Callable[[TrainState, TrainMetrics, Any], tuple[TrainState, TrainMetrics]]:
  """A step: dense gradients, an optimizer step, maybe a topology update.

  Args:
    model: the Flax model.
    label_smoothing: of the training loss.
    topology_update: see ``TrainState.apply_gradients``: None decides in the
      step; True or False builds the step of that kind.
    preprocess: the data set's device preprocessing.
    seed: seeds the augmentation keys, one per step.
    load_batch: makes the step's batch of its inputs (by default the inputs
      are the batch).
    compute_dtype: of activations and matmuls (None: the params' float32);
      see ``apply_model``.

  Returns:
    ``(state, metrics, inputs) -> (state, metrics)``, the batch's metrics
    added to ``metrics``.
  """

  def train_step(state: TrainState, metrics: TrainMetrics, inputs: Any):
    batch = preprocess(
        load_batch(inputs, state.step), augmentation_key(seed, state.step), True
    )
    weights = batch['weights']

    def loss_fn(params):
      logits, batch_stats = apply_model(
          model,
          params,
          state.batch_stats,
          batch['inputs'],
          train=True,
          dropout_rng=dropout_key(seed, state.step),
          compute_dtype=compute_dtype,
      )
      per_label = tasks.cross_entropy(logits, batch['labels'], label_smoothing)
      loss = jnp.sum(per_label * weights) / jnp.maximum(jnp.sum(weights), 1)
      return loss, (logits, per_label, batch_stats)

    (loss, (logits, per_label, batch_stats)), grads = jax.value_and_grad(
        loss_fn, has_aux=True
    )(state.params)
    updates = {} if batch_stats is None else {'batch_stats': batch_stats}
    new_state = state.apply_gradients(
        grads=grads, topology_update=topology_update, **updates
    )
    # Non-finite steps are recorded, not skipped: the loop stops at the next
    # check, before any checkpoint could store the broken state.
    finite = jnp.isfinite(loss) & all_finite(grads)
    metrics = metrics.add(
        per_label, tasks.correct(logits, batch['labels']), weights
    ).record_finite(state.step, finite)
    return new_state, metrics

  return train_step


def make_eval_step(
    model: nn.Module,
    task: tasks.Task,
    preprocess: DevicePreprocess = _no_preprocessing,
    compute_dtype: Optional[jnp.dtype] = None,
) -> Callable[[TrainState, EvalMetrics, Batch], EvalMetrics]:
  """Adds the task's metrics of one (padded) evaluation batch to ``metrics``."""

  def eval_step(
      state: TrainState, metrics: EvalMetrics, batch: Batch
  ) -> EvalMetrics:
    batch = preprocess(batch, jax.random.key(0), False)
    logits, _ = apply_model(
        model,
        state.params,
        state.batch_stats,
        batch['inputs'],
        train=False,
        compute_dtype=compute_dtype,
    )
    labels = batch['labels']
    return metrics.add(
        {
            name: metric(logits, labels)
            for name, metric in task.label_metrics.items()
        },
        batch['weights'],
    )

  return eval_step


def topology_summary(state: TrainState) -> dict[str, jax.Array]:
  """Sparsity (per layer, overall, of channels), churn, exploration."""
  summary = {}
  total = active = channels = live = 0
  for path, mask in tree_paths.named_leaves(state.masks):
    count = jnp.sum(mask, dtype=jnp.int32)
    summary[f'sparsity/{path}'] = (mask.size - count) / mask.size
    total += mask.size
    active += count
    # Output channels (the last axis) without an active weight.
    channels += mask.shape[-1]
    live += jnp.sum(jnp.any(mask.reshape(-1, mask.shape[-1]), axis=0))
  if total:
    summary['sparsity/overall'] = (total - active) / total
    summary['channel_sparsity/overall'] = (channels - live) / channels
  summary['mask_churn'] = state.topology_stats.last_churn
  summary['exploration_rate'] = state.topology_stats.exploration_rate(
      state.masks
  )
  return summary
