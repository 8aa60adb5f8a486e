"""Tasks: what a model predicts, and the metrics its evaluation reports.

A model and a data set each name their task ('classification',
'language_model'); the run checks that they agree. A task's metrics are
per-label values averaged over the weighted labels of the evaluation split
(padding has weight 0), accumulated inside the jitted eval step, plus
metrics derived from those averages on the host. Adding a metric is adding
an entry here; adding a task is adding a ``Task`` to ``TASKS`` and its
name to the tasks that models and data sets may declare
(``rigl_jax.models.base.TASKS``, ``rigl_jax.data.base.TASKS``).
"""

import dataclasses
import math
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import optax

# (logits [..., classes], labels [...]) -> a value per label.
LabelMetric = Callable[[jax.Array, jax.Array], jax.Array]


def cross_entropy(
    logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0
) -> jax.Array:
  """Per-label softmax cross-entropy (nats), with optional smoothing."""
  targets = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
  if label_smoothing:
    targets = optax.smooth_labels(targets, label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def correct(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """1 where the most likely class is the label, else 0."""
  return (jnp.argmax(logits, -1) == labels).astype(jnp.float32)


def _bits_per_char(means: Mapping[str, float]) -> dict[str, float]:
  return {'bits_per_char': means['loss'] / math.log(2.0)}


@dataclasses.dataclass(frozen=True)
class Task:
  """A kind of prediction and how it is scored.

  Attributes:
    name: as models and data sets name it.
    label_metrics: {name: per-label value}, averaged over weighted labels.
    derived: the averages -> further metrics (e.g. bits per character).
  """

  name: str
  label_metrics: Mapping[str, LabelMetric]
  derived: Callable[[Mapping[str, float]], dict[str, float]] = lambda means: {}

  def metrics(self, means: Mapping[str, float]) -> dict[str, float]:
    """Every metric of the task from the averaged label metrics."""
    return {**means, **self.derived(means)}


_SCORES = {'loss': cross_entropy, 'accuracy': correct}

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task('classification', _SCORES),
        Task('language_model', _SCORES, derived=_bits_per_char),
    )
}


def get(name: str) -> Task:
  """The task ``name`` (models and data sets name only known tasks)."""
  if name not in TASKS:
    raise ValueError(f'no task {name!r}; the tasks are {sorted(TASKS)}')
  return TASKS[name]
