"""ResNet-50 v1.5 for ImageNet (He et al. 2016, stride in the 3x3 conv).

The v1.5 variant puts the stride of a downsampling bottleneck in its 3x3
convolution rather than its first 1x1 convolution, as torchvision and the
TPU ResNet that the RigL paper trains do. At width 1 with 1000 classes it
has 25,557,032 parameters (BatchNorm scale and bias included).
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

EXPANSION = 4  # A bottleneck's output has 4x its inner width.

# He initialization: the convolutions are followed by ReLUs.
_conv_init = nn.initializers.he_normal()


class Bottleneck(nn.Module):
  """1x1 -> 3x3 (strided) -> 1x1 convolutions with a residual connection.

  Attributes:
    features: the inner width; the output has ``EXPANSION`` times as many
      channels.
    strides: stride of the 3x3 convolution (and of the projection).
    zero_init_last_bn: start the last BatchNorm's scale at zero, so each
      block begins as the identity (Goyal et al. 2017).
  """

  features: int
  strides: int = 1
  zero_init_last_bn: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    conv = functools.partial(nn.Conv, use_bias=False, kernel_init=_conv_init)
    out_features = self.features * EXPANSION
    y = conv(self.features, (1, 1), name='conv1')(x)
    y = nn.relu(batch_norm.batch_norm(train, name='bn1')(y))
    y = conv(
        self.features,
        (3, 3),
        strides=self.strides,
        padding=((1, 1), (1, 1)),
        name='conv2',
    )(y)
    y = nn.relu(batch_norm.batch_norm(train, name='bn2')(y))
    y = conv(out_features, (1, 1), name='conv3')(y)
    last_scale_init = (
        nn.initializers.zeros
        if self.zero_init_last_bn
        else nn.initializers.ones
    )
    y = batch_norm.batch_norm(train, name='bn3', scale_init=last_scale_init)(y)
    shortcut = x
    if x.shape[-1] != out_features or self.strides != 1:
      shortcut = conv(
          out_features, (1, 1), strides=self.strides, name='shortcut_conv'
      )(x)
      shortcut = batch_norm.batch_norm(train, name='shortcut_bn')(shortcut)
    return nn.relu(y + shortcut)


class ResNet(nn.Module):
  """A bottleneck ResNet with the ImageNet stem and head.

  Attributes:
    num_classes: size of the classifier.
    width: multiplier of every channel count.
    stage_sizes: the number of bottlenecks in each stage.
    zero_init_last_bn: see ``Bottleneck``.
  """

  num_classes: int = 1000
  width: float = 1.0
  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  zero_init_last_bn: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = inputs.as_float(x)
    x = nn.Conv(
        widths.scale(64, self.width),
        (7, 7),
        strides=2,
        padding=((3, 3), (3, 3)),
        use_bias=False,
        kernel_init=_conv_init,
        name='stem',
    )(x)
    x = nn.relu(batch_norm.batch_norm(train, name='stem_bn')(x))
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    for stage, num_blocks in enumerate(self.stage_sizes):
      features = widths.scale(64 * 2**stage, self.width)
      for block in range(num_blocks):
        # The first block of every stage but the first halves the resolution.
        strides = 2 if stage > 0 and block == 0 else 1
        x = Bottleneck(
            features,
            strides,
            self.zero_init_last_bn,
            name=f'stage{stage + 1}_block{block}',
        )(x, train)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name='head')(x)


def channel_links(paths: Sequence[str]) -> tuple[base.ChannelLink, ...]:
  """Inside each bottleneck, conv1's and conv2's channels feed the next
  convolution alone; the other convolutions only fold their BatchNorm."""
  links = [base.ChannelLink('stem', norm='stem_bn')]
  for block in sorted({p.rsplit('/', 1)[0] for p in paths if '/conv' in p}):
    links += [
        base.ChannelLink(f'{block}/conv1', f'{block}/conv2', f'{block}/bn1'),
        base.ChannelLink(f'{block}/conv2', f'{block}/conv3', f'{block}/bn2'),
        base.ChannelLink(f'{block}/conv3', norm=f'{block}/bn3'),
    ]
    if f'{block}/shortcut_conv' in paths:
      links.append(
          base.ChannelLink(
              f'{block}/shortcut_conv', norm=f'{block}/shortcut_bn'
          )
      )
  return tuple(links)


MODEL = base.Model(
    name='resnet50',
    task='classification',
    first_layer='stem/kernel',
    output_layer='head/kernel',
    create=ResNet,
    default_options={'stage_sizes': (3, 4, 6, 3)},
    channel_links=channel_links,
)
