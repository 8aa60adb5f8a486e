"""The per-step computations of a run: train step, eval step, summaries.

Pure functions of (state, batch); ``train.py`` jits them with shardings.
Batches are dicts with 'inputs', 'labels' and 'weights' (0 for padding);
labels may have any rank (class per image, byte per position).
"""

from typing import Any, Callable, Optional

from clu import metrics
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rigl_jax import train_state as train_state_lib
from rigl_jax import tree_paths

Batch = dict[str, jax.Array]
TrainState = train_state_lib.TrainState


# No non-finite step seen (int32 max).
NEVER = np.iinfo(np.int32).max


@flax.struct.dataclass
class FirstNonFiniteStep(metrics.Metric):
  """The earliest step whose loss or gradients were not finite, or NEVER."""
  step: jax.Array

  @classmethod
  def from_model_output(cls, *, step: jax.Array, finite: jax.Array,
                        **_) -> 'FirstNonFiniteStep':
    return cls(step=jnp.where(finite, NEVER, step).astype(jnp.int32))

  @classmethod
  def empty(cls) -> 'FirstNonFiniteStep':
    return cls(step=jnp.asarray(NEVER, jnp.int32))

  def merge(self, other: 'FirstNonFiniteStep') -> 'FirstNonFiniteStep':
    return type(self)(step=jnp.minimum(self.step, other.step))

  def compute(self) -> jax.Array:
    return self.step


@flax.struct.dataclass
class Metrics(metrics.Collection):
  """Loss (nats per label) and accuracy, averaged over weighted labels."""
  loss: metrics.Average.from_output('loss')
  accuracy: metrics.Average.from_output('correct')


@flax.struct.dataclass
class TrainMetrics(metrics.Collection):
  """Training metrics, and where training first became non-finite."""
  loss: metrics.Average.from_output('loss')
  accuracy: metrics.Average.from_output('correct')
  first_nonfinite_step: FirstNonFiniteStep


def all_finite(tree: Any) -> jax.Array:
  """Whether every entry of every leaf of ``tree`` is finite."""
  return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x))
                            for x in jax.tree.leaves(tree)]))


def cross_entropy(logits: jax.Array, labels: jax.Array,
                  label_smoothing: float = 0.0) -> jax.Array:
  """Per-label softmax cross-entropy (nats), with optional smoothing."""
  targets = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
  if label_smoothing:
    targets = optax.smooth_labels(targets, label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def _batch_metrics(collection, logits: jax.Array, per_label_loss: jax.Array,
                   batch: Batch, **extra):
  return collection.single_from_model_output(
      loss=per_label_loss,
      correct=(jnp.argmax(logits, -1) == batch['labels']).astype(jnp.float32),
      mask=batch['weights'] > 0, **extra)


def apply_model(model: nn.Module, params: Any, batch_stats: Optional[Any],
                inputs: jax.Array, train: bool) -> tuple[jax.Array, Any]:
  """Logits, and the updated BatchNorm statistics when training."""
  variables = {'params': params}
  if batch_stats is None:
    return model.apply(variables, inputs, train=train), None
  variables['batch_stats'] = batch_stats
  if not train:
    return model.apply(variables, inputs, train=False), batch_stats
  logits, updates = model.apply(variables, inputs, train=True,
                                mutable=['batch_stats'])
  return logits, updates['batch_stats']


def make_train_step(
    model: nn.Module,
    label_smoothing: float,
    topology_update: Optional[bool] = None
) -> Callable[[TrainState, Batch], tuple[TrainState, TrainMetrics]]:
  """A step: dense gradients, an optimizer step, maybe a topology update.

  Args:
    model: the Flax model.
    label_smoothing: of the training loss.
    topology_update: see ``TrainState.apply_gradients``: None decides in the
      step; True or False builds the step of that kind.
  """

  def train_step(state: TrainState, batch: Batch):
    weights = batch['weights']

    def loss_fn(params):
      logits, batch_stats = apply_model(model, params, state.batch_stats,
                                        batch['inputs'], train=True)
      per_label = cross_entropy(logits, batch['labels'], label_smoothing)
      loss = jnp.sum(per_label * weights) / jnp.maximum(jnp.sum(weights), 1)
      return loss, (logits, per_label, batch_stats)

    (loss, (logits, per_label, batch_stats)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    updates = {} if batch_stats is None else {'batch_stats': batch_stats}
    new_state = state.apply_gradients(grads=grads,
                                      topology_update=topology_update,
                                      **updates)
    # Non-finite steps are recorded, not skipped: the loop stops at the next
    # check, before any checkpoint could store the broken state.
    finite = jnp.isfinite(loss) & all_finite(grads)
    return new_state, _batch_metrics(TrainMetrics, logits, per_label, batch,
                                     step=state.step, finite=finite)

  return train_step


def make_eval_step(
    model: nn.Module) -> Callable[[TrainState, Batch], Metrics]:
  """Metrics of one (padded) evaluation batch."""

  def eval_step(state: TrainState, batch: Batch) -> Metrics:
    logits, _ = apply_model(model, state.params, state.batch_stats,
                            batch['inputs'], train=False)
    return _batch_metrics(Metrics, logits,
                          cross_entropy(logits, batch['labels']), batch)

  return eval_step


def topology_summary(state: TrainState) -> dict[str, jax.Array]:
  """Per-layer and overall sparsity, churn and exploration, as scalars."""
  summary = {}
  total = active = 0
  for path, mask in tree_paths.named_leaves(state.masks):
    count = jnp.sum(mask, dtype=jnp.int32)
    summary[f'sparsity/{path}'] = (mask.size - count) / mask.size
    total += mask.size
    active += count
  if total:
    summary['sparsity/overall'] = (total - active) / total
  summary['mask_churn'] = state.topology_stats.last_churn
  summary['exploration_rate'] = state.topology_stats.exploration_rate(
      state.masks)
  return summary
