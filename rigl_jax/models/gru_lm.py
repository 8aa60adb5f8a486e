"""A GRU character (byte) language model with a tied embedding.

Bytes are embedded (dim 128), run through a GRU (state 512), and a readout
of two Dense layers (256, then 128 = the embedding dim) maps each state to
the embedding space, where logits are dot products with the shared
embedding (``nn.Embed.attend``). This is the RigL paper's character-level
WikiText-103 model. The GRU's input and recurrent kernels are ordinary 2-D
Dense kernels, so the sparse core can sparsify them like any other layer.
"""

import flax.linen as nn
import jax

from rigl_jax.models import base
from rigl_jax.models import widths


class GRULanguageModel(nn.Module):
  """Next-byte logits [B, T, num_classes] from bytes [B, T].

  Attributes:
    num_classes: the vocabulary size (256 for bytes).
    width: multiplier of the GRU state and the hidden readout layer; the
      embedding dim (and so the last readout layer) stays fixed because the
      logits are computed through the shared embedding.
    embedding_dim: size of the shared embedding.
    state_size: GRU state size at width 1.
    readout_size: hidden readout layer size at width 1.
  """

  num_classes: int = 256
  width: float = 1.0
  embedding_dim: int = 128
  state_size: int = 512
  readout_size: int = 256

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train  # No dropout or normalization.
    embedding = nn.Embed(self.num_classes, self.embedding_dim, name='embedding')
    h = embedding(x)
    # Naming the cell (not the RNN wrapper) gives paths like 'gru/hr/kernel'.
    cell = nn.GRUCell(widths.scale(self.state_size, self.width), name='gru')
    h = nn.RNN(cell)(h)
    h = nn.relu(
        nn.Dense(widths.scale(self.readout_size, self.width), name='readout1')(
            h
        )
    )
    # Linear, so that the readout can reach any point of the embedding space.
    h = nn.Dense(self.embedding_dim, name='readout2')(h)
    return embedding.attend(h)


MODEL = base.Model(
    name='gru_lm',
    task='language_model',
    first_layer='embedding/embedding',
    output_layer='readout2/kernel',
    create=GRULanguageModel,
)
