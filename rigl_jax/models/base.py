"""What a run needs to know of a model, declared next to the model itself.

A model module declares ``MODEL = base.Model(...)`` (or ``MODELS = (...)``
for several); ``rigl_jax.models`` finds it by scanning the package, so
adding a model touches no other file.
"""

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax

# What a model predicts: a class per example, or the next token of a
# sequence (a data set spec's ``task``).
TASKS = ('classification', 'language_model')


@dataclasses.dataclass(frozen=True)
class ChannelLink:
  """Output channels of one layer that only one later layer reads.

  The path from ``producer`` to ``consumer`` holds nothing but, in order:
  the BatchNorm ``norm`` (optional), ``activation``, optionally a depthwise
  convolution with its BatchNorm and ``activation`` again, and operations
  that act on each channel alone (pooling, dropout at inference). A channel
  whose producer weights are all zero is then a constant (or, through a
  padded convolution, a fixed map) at the consumer, so an export can remove
  it from every layer and fold its value into the consumer's bias.

  Attributes:
    producer: module path of the Dense or Conv whose channels may go.
    consumer: module path of the Dense or Conv reading them; '' when
      nothing may be removed and only ``norm`` is folded into ``producer``.
    norm: module path of the BatchNorm right after ``producer``, or ''.
    activation: the elementwise function after ``norm``.
    depthwise: module path of a depthwise Conv between the two, or ''.
    depthwise_norm: module path of the BatchNorm after ``depthwise``.
  """

  producer: str
  consumer: str = ''
  norm: str = ''
  activation: Callable[[jax.Array], jax.Array] = nn.relu
  depthwise: str = ''
  depthwise_norm: str = ''


@dataclasses.dataclass(frozen=True)
class Model:
  """A model that ``config.model.name`` can name.

  Attributes:
    name: the registered name.
    task: one of ``TASKS``; a run pairs it with a data set of that task.
    first_layer: path of the kernel the input meets first, which the
      'uniform' distribution keeps dense.
    create: builds the Flax module from ``num_classes=``, ``width=`` and
      the options.
    default_options: options that ``config.model.options`` overrides.
    output_layer: path of the kernel that gives the logits, whose units
      (the classes) a method never removes ('': not declared).
    channel_links: the model's ``ChannelLink``s, given the module paths
      of its parameters (e.g. 'stage1_block0/conv1'); the 'shrunk' export
      removes channels along them and nowhere else.
  """

  name: str
  task: str
  first_layer: str
  create: Callable[..., nn.Module]
  default_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  output_layer: str = ''
  channel_links: Callable[[Sequence[str]], tuple[ChannelLink, ...]] = (
      lambda paths: ()
  )


def _field_problem(model: Model) -> str | None:
  """What is wrong with one of ``model``'s fields, or None."""
  if model.task not in TASKS:
    return f'task must be one of {list(TASKS)}, got {model.task!r}'
  if not (isinstance(model.first_layer, str) and model.first_layer):
    return f'first_layer must be a kernel path, got {model.first_layer!r}'
  if not callable(model.create):
    return f'create must be callable, got {model.create!r}'
  if not isinstance(model.default_options, Mapping):
    return f'default_options must be a mapping, got {model.default_options!r}'
  return None


def problem(model: Any) -> str | None:
  """What makes ``model`` an unusable declaration, or None."""
  if not isinstance(model, Model):
    return f'must be a rigl_jax.models.base.Model, got {model!r}'
  if not (isinstance(model.name, str) and model.name):
    return f'name must be a non-empty string, got {model.name!r}'
  field_problem = _field_problem(model)
  return f'{model.name}: {field_problem}' if field_problem else None
