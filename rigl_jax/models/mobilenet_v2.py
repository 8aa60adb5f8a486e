"""MobileNet v2 for ImageNet (Sandler et al. 2018).

A stem convolution, 17 inverted-residual blocks and a 1x1 convolution to
1280 channels, followed by global pooling and a Dense classifier with bias.
Convolutions have no bias and are followed by BatchNorm (and ReLU6, except
after the linear bottleneck projection). At width 1 with 1000 classes it has
3,504,872 parameters, the trainable count of Keras's MobileNetV2.

``width`` is the paper's width multiplier: channel counts are scaled and
rounded to a multiple of 8, and the last convolution's 1280 channels are
only widened (never narrowed), both as in the paper. Narrow models that must
reach small parameter counts (Small-Dense) can set ``fixed_last_conv=False``
to scale the last convolution too: its 1280 channels and the classifier
behind them hold over 1.28M parameters at any width otherwise.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rigl_jax.models import base
from rigl_jax.models import batch_norm
from rigl_jax.models import inputs
from rigl_jax.models import widths

# (expansion t, output channels c, repeats n, first stride s) of each
# bottleneck sequence at width 1 (the paper's Table 2).
STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
LAST_FEATURES = 1280
DIVISOR = 8  # Channel counts are multiples of 8 (hardware friendly).

_conv_init = nn.initializers.he_normal()


class InvertedResidual(nn.Module):
  """1x1 expansion, 3x3 depthwise conv, linear 1x1 projection (+ residual).

  Attributes:
    features: output channels of the projection.
    strides: stride of the depthwise convolution.
    expansion: the expansion factor t; 1 leaves out the expansion conv.
  """

  features: int
  strides: int = 1
  expansion: int = 6

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    in_features = x.shape[-1]
    y = x
    if self.expansion != 1:
      y = nn.Conv(
          in_features * self.expansion,
          (1, 1),
          use_bias=False,
          kernel_init=_conv_init,
          name='expand',
      )(y)
      y = nn.relu6(batch_norm.batch_norm(train, name='expand_bn')(y))
    channels = y.shape[-1]
    y = nn.Conv(
        channels,
        (3, 3),
        strides=self.strides,
        padding='SAME',
        feature_group_count=channels,
        use_bias=False,
        kernel_init=_conv_init,
        name='depthwise',
    )(y)
    y = nn.relu6(batch_norm.batch_norm(train, name='depthwise_bn')(y))
    y = nn.Conv(
        self.features,
        (1, 1),
        use_bias=False,
        kernel_init=_conv_init,
        name='project',
    )(y)
    # Linear bottleneck: no nonlinearity after the projection.
    y = batch_norm.batch_norm(train, name='project_bn')(y)
    if self.strides == 1 and in_features == self.features:
      y = y + x
    return y


class MobileNetV2(nn.Module):
  """MobileNet v2 with the ImageNet stem and a global-pool classifier.

  Attributes:
    num_classes: size of the classifier.
    width: the width multiplier.
    stages: (t, c, n, s) of each bottleneck sequence at width 1.
    fixed_last_conv: keep the last convolution at 1280 channels for widths
      below 1 (the paper); False scales it like every other layer.
  """

  num_classes: int = 1000
  width: float = 1.0
  stages: Sequence[tuple[int, int, int, int]] = STAGES
  fixed_last_conv: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = inputs.as_float(x)
    x = nn.Conv(
        widths.scale(32, self.width, DIVISOR),
        (3, 3),
        strides=2,
        padding='SAME',
        use_bias=False,
        kernel_init=_conv_init,
        name='stem',
    )(x)
    x = nn.relu6(batch_norm.batch_norm(train, name='stem_bn')(x))
    block = 0
    for expansion, features, repeats, first_strides in self.stages:
      for i in range(repeats):
        x = InvertedResidual(
            widths.scale(features, self.width, DIVISOR),
            first_strides if i == 0 else 1,
            expansion,
            name=f'block{block}',
        )(x, train)
        block += 1
    last_features = widths.scale(LAST_FEATURES, self.width, DIVISOR)
    if self.fixed_last_conv:
      last_features = max(last_features, LAST_FEATURES)
    x = nn.Conv(
        last_features,
        (1, 1),
        use_bias=False,
        kernel_init=_conv_init,
        name='last_conv',
    )(x)
    x = nn.relu6(batch_norm.batch_norm(train, name='last_bn')(x))
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name='head')(x)


MODEL = base.Model(
    name='mobilenet_v2',
    task='classification',
    first_layer='stem/kernel',
    output_layer='head/kernel',
    create=MobileNetV2,
)
