"""Wide residual networks for CIFAR (Zagoruyko & Komodakis 2016).

Pre-activation residual blocks (BN, ReLU, 3x3 conv, twice) in three groups
of (depth - 4) / 6 blocks with 16k, 32k and 64k channels, after a 3x3 stem
convolution with 16 channels. WRN-22-2 (the RigL paper's CIFAR-10 model)
has 1,079,642 parameters with 10 classes.
"""

from collections.abc import Sequence
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from rigl_jax.models import base
from rigl_jax.models import batch_norm
from rigl_jax.models import inputs
from rigl_jax.models import widths

_conv_init = nn.initializers.he_normal()


class PreActBlock(nn.Module):
  """BN-ReLU-conv3x3 twice, plus a 1x1 projection when the shape changes.

  Attributes:
    features: output channels.
    strides: stride of the first convolution (and of the projection).
    dropout_rate: dropout between the two convolutions while training.
  """

  features: int
  strides: int = 1
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    conv = functools.partial(nn.Conv, use_bias=False, kernel_init=_conv_init)
    y = nn.relu(batch_norm.batch_norm(train, name='bn1')(x))
    shortcut = x
    if x.shape[-1] != self.features or self.strides != 1:
      # The projection sees the pre-activated input, as in the WRN paper.
      shortcut = conv(
          self.features, (1, 1), strides=self.strides, name='shortcut'
      )(y)
    y = conv(
        self.features,
        (3, 3),
        strides=self.strides,
        padding=((1, 1), (1, 1)),
        name='conv1',
    )(y)
    y = nn.relu(batch_norm.batch_norm(train, name='bn2')(y))
    if self.dropout_rate:
      y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
    y = conv(self.features, (3, 3), padding=((1, 1), (1, 1)), name='conv2')(y)
    return y + shortcut


class WideResNet(nn.Module):
  """WRN-depth-widen_factor for 32x32 images.

  Attributes:
    num_classes: size of the classifier.
    width: multiplier of every channel count (on top of ``widen_factor``).
    depth: total depth; (depth - 4) must be divisible by 6.
    widen_factor: k, the widening of the three groups.
    dropout_rate: dropout inside every block while training (needs a
      'dropout' key in ``apply``'s ``rngs``).
  """

  num_classes: int = 10
  width: float = 1.0
  depth: int = 22
  widen_factor: int = 2
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if (self.depth - 4) % 6:
      raise ValueError(f'WideResNet depth must be 6n + 4, got {self.depth}')
    blocks_per_group = (self.depth - 4) // 6
    x = inputs.as_float(x)
    x = nn.Conv(
        widths.scale(16, self.width),
        (3, 3),
        padding=((1, 1), (1, 1)),
        use_bias=False,
        kernel_init=_conv_init,
        name='stem',
    )(x)
    for group in range(3):
      features = widths.scale(16 * 2**group * self.widen_factor, self.width)
      for block in range(blocks_per_group):
        strides = 2 if group > 0 and block == 0 else 1
        x = PreActBlock(
            features,
            strides,
            self.dropout_rate,
            name=f'group{group + 1}_block{block}',
        )(x, train)
    x = nn.relu(batch_norm.batch_norm(train, name='final_bn')(x))
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name='head')(x)


def channel_links(paths: Sequence[str]) -> tuple[base.ChannelLink, ...]:
  """Inside each block, conv1's channels feed conv2 alone (the other
  BatchNorms follow additions, so nothing else folds)."""
  blocks = sorted({p.rsplit('/', 1)[0] for p in paths if p.endswith('/conv1')})
  return tuple(
      base.ChannelLink(f'{b}/conv1', f'{b}/conv2', f'{b}/bn2') for b in blocks
  )


MODEL = base.Model(
    name='wrn22_2',
    task='classification',
    first_layer='stem/kernel',
    output_layer='head/kernel',
    create=WideResNet,
    default_options={'depth': 22, 'widen_factor': 2},
    channel_links=channel_links,
)
