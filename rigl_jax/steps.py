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
import optax

from rigl_jax import train_state as train_state_lib
from rigl_jax import tree_paths

Batch = dict[str, jax.Array]
TrainState = train_state_lib.TrainState


@flax.struct.dataclass
class Metrics(metrics.Collection):
  """Loss (nats per label) and accuracy, averaged over weighted labels."""
  loss: metrics.Average.from_output('loss')
  accuracy: metrics.Average.from_output('correct')


def cross_entropy(logits: jax.Array, labels: jax.Array,
                  label_smoothing: float = 0.0) -> jax.Array:
  """Per-label softmax cross-entropy (nats), with optional smoothing."""
  targets = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
  if label_smoothing:
    targets = optax.smooth_labels(targets, label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def _batch_metrics(logits: jax.Array, per_label_loss: jax.Array,
                   batch: Batch) -> Metrics:
  return Metrics.single_from_model_output(
      loss=per_label_loss,
      correct=(jnp.argmax(logits, -1) == batch['labels']).astype(jnp.float32),
      mask=batch['weights'] > 0)


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
    model: nn.Module, label_smoothing: float
) -> Callable[[TrainState, Batch], tuple[TrainState, Metrics]]:
  """A step: dense gradients, then an optimizer step or a topology update."""

  def train_step(state: TrainState, batch: Batch):
    weights = batch['weights']

    def loss_fn(params):
      logits, batch_stats = apply_model(model, params, state.batch_stats,
                                        batch['inputs'], train=True)
      per_label = cross_entropy(logits, batch['labels'], label_smoothing)
      loss = jnp.sum(per_label * weights) / jnp.maximum(jnp.sum(weights), 1)
      return loss, (logits, per_label, batch_stats)

    (_, (logits, per_label, batch_stats)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.params)
    updates = {} if batch_stats is None else {'batch_stats': batch_stats}
    new_state = state.apply_gradients(grads=grads, **updates)
    return new_state, _batch_metrics(logits, per_label, batch)

  return train_step


def make_eval_step(
    model: nn.Module) -> Callable[[TrainState, Batch], Metrics]:
  """Metrics of one (padded) evaluation batch."""

  def eval_step(state: TrainState, batch: Batch) -> Metrics:
    logits, _ = apply_model(model, state.params, state.batch_stats,
                            batch['inputs'], train=False)
    return _batch_metrics(logits, cross_entropy(logits, batch['labels']),
                          batch)

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
