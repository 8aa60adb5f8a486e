"""LeNet-300-100: the fully connected MNIST network (784-300-100-10)."""

from collections.abc import Sequence

import flax.linen as nn
import jax

from rigl_jax.models import base
from rigl_jax.models import inputs
from rigl_jax.models import widths


class LeNet300100(nn.Module):
  """An MLP with two ReLU hidden layers; ``width`` scales both.

  Attributes:
    num_classes: size of the output layer.
    width: multiplier of the hidden sizes (300, 100).
    hidden_sizes: the hidden sizes at width 1.
  """

  num_classes: int = 10
  width: float = 1.0
  hidden_sizes: Sequence[int] = (300, 100)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train  # No dropout or normalization.
    x = inputs.as_float(x.reshape((x.shape[0], -1)))
    for size in self.hidden_sizes:
      x = nn.relu(nn.Dense(widths.scale(size, self.width))(x))
    return nn.Dense(self.num_classes)(x)


def channel_links(paths: Sequence[str]) -> tuple[base.ChannelLink, ...]:
  """Each hidden layer's units feed the next Dense layer alone."""
  dense = sorted(
      (p for p in paths if p.startswith('Dense_')),
      key=lambda p: int(p.split('_')[1]),
  )
  return tuple(
      base.ChannelLink(producer=p, consumer=c, activation=nn.relu)
      for p, c in zip(dense, dense[1:])
  )


MODEL = base.Model(
    name='lenet300_100',
    task='classification',
    first_layer='Dense_0/kernel',
    output_layer='Dense_2/kernel',
    create=LeNet300100,
    channel_links=channel_links,
)
