"""Image preprocessing that runs on the device, inside the jitted step.

Pipelines send uint8 images (a quarter of the bytes of float32); scaling,
normalization and cheap augmentation happen here, on the whole global
batch, with randomness drawn from a key of (seed, step).
"""

import jax
import jax.numpy as jnp
import numpy as np


def scale_to_unit(images: jax.Array) -> jax.Array:
  """uint8 pixels to float32 in [0, 1]."""
  return images.astype(jnp.float32) / 255.0


def normalize(
    images: jax.Array, mean: np.ndarray, std: np.ndarray
) -> jax.Array:
  """(pixels - mean) / std per channel, in float32; mean and std in 0-255."""
  return (images.astype(jnp.float32) - mean) / std


def random_crop_with_padding(
    rng: jax.Array, images: jax.Array, padding: int
) -> jax.Array:
  """Zero-pads each [N, H, W, C] image by ``padding`` and crops back to H x W.

  Every image gets its own offset, uniform over the 2 * padding + 1
  positions along each axis.
  """
  height, width = images.shape[1:3]
  padded = jnp.pad(
      images, [(0, 0), (padding, padding), (padding, padding), (0, 0)]
  )
  offsets = jax.random.randint(rng, (images.shape[0], 2), 0, 2 * padding + 1)

  def crop(image, offset):
    return jax.lax.dynamic_slice(
        image, (offset[0], offset[1], 0), (height, width, image.shape[-1])
    )

  return jax.vmap(crop)(padded, offsets)


def random_flip_left_right(rng: jax.Array, images: jax.Array) -> jax.Array:
  """Mirrors each [N, H, W, C] image with probability 1/2."""
  flip = jax.random.bernoulli(rng, 0.5, (images.shape[0], 1, 1, 1))
  return jnp.where(flip, images[:, :, ::-1], images)
