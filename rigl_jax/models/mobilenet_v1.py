"""MobileNet v1 for ImageNet (Howard et al. 2017).

A stem convolution followed by 13 depthwise-separable blocks. Convolutions
have no bias and are followed by BatchNorm and ReLU6; the classifier is a
Dense layer with bias on the globally pooled features. At width 1 with 1000
classes it has 4,231,976 parameters, the trainable count of Keras's
MobileNet. ``width`` is the paper's width multiplier α: every layer has
round(α * channels) channels. The RigL paper's big-sparse model uses
α = 1.98.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rigl_jax.models import base
from rigl_jax.models import batch_norm
from rigl_jax.models import inputs
from rigl_jax.models import widths

# (pointwise output channels, stride of the depthwise convolution) of each
# depthwise-separable block at width 1 (the paper's Table 1).
BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)

_conv_init = nn.initializers.he_normal()


class DepthwiseSeparable(nn.Module):
  """3x3 depthwise conv, BN, ReLU6, then 1x1 pointwise conv, BN, ReLU6.

  Attributes:
    features: output channels of the pointwise convolution.
    strides: stride of the depthwise convolution.
  """

  features: int
  strides: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    channels = x.shape[-1]
    x = nn.Conv(
        channels,
        (3, 3),
        strides=self.strides,
        padding='SAME',
        feature_group_count=channels,
        use_bias=False,
        kernel_init=_conv_init,
        name='depthwise',
    )(x)
    x = nn.relu6(batch_norm.batch_norm(train, name='depthwise_bn')(x))
    x = nn.Conv(
        self.features,
        (1, 1),
        use_bias=False,
        kernel_init=_conv_init,
        name='pointwise',
    )(x)
    return nn.relu6(batch_norm.batch_norm(train, name='pointwise_bn')(x))


class MobileNetV1(nn.Module):
  """MobileNet v1 with the ImageNet stem and a global-pool classifier.

  Attributes:
    num_classes: size of the classifier.
    width: the width multiplier α.
    blocks: (channels, stride) of each depthwise-separable block at width 1.
  """

  num_classes: int = 1000
  width: float = 1.0
  blocks: Sequence[tuple[int, int]] = BLOCKS

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = inputs.as_float(x)
    x = nn.Conv(
        widths.scale(32, self.width),
        (3, 3),
        strides=2,
        padding='SAME',
        use_bias=False,
        kernel_init=_conv_init,
        name='stem',
    )(x)
    x = nn.relu6(batch_norm.batch_norm(train, name='stem_bn')(x))
    for i, (features, strides) in enumerate(self.blocks):
      x = DepthwiseSeparable(
          widths.scale(features, self.width), strides, name=f'block{i + 1}'
      )(x, train)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name='head')(x)


def channel_links(paths: Sequence[str]) -> tuple[base.ChannelLink, ...]:
  """The stem's and each pointwise convolution's channels pass through the
  next block's depthwise convolution to its pointwise one alone; the last
  block's reach the head through the global pool."""
  blocks = sorted(
      {p.split('/')[0] for p in paths if p.startswith('block')},
      key=lambda b: int(b[len('block') :]),
  )
  producers = [('stem', 'stem_bn')] + [
      (f'{b}/pointwise', f'{b}/pointwise_bn') for b in blocks
  ]
  links = []
  for (producer, norm), block in zip(producers, blocks):
    links.append(
        base.ChannelLink(
            producer,
            f'{block}/pointwise',
            norm,
            nn.relu6,
            depthwise=f'{block}/depthwise',
            depthwise_norm=f'{block}/depthwise_bn',
        )
    )
  producer, norm = producers[-1]
  links.append(base.ChannelLink(producer, 'head', norm, nn.relu6))
  return tuple(links)


MODEL = base.Model(
    name='mobilenet_v1',
    task='classification',
    first_layer='stem/kernel',
    output_layer='head/kernel',
    create=MobileNetV1,
    channel_links=channel_links,
)
