r"""Top-k selection: the radix select used by masks against a full sort.

Every mask selection (random masks, drop, grow, pruning) picks the k
largest scores of a layer. rigl_jax.topology.top_k_mask finds the k-th
largest value with 32 counting passes; the alternative is a stable argsort.
Both give the same mask; this compares their time on the layer sizes of
the benchmark models.

  python benchmarks/selection.py
"""

from collections.abc import Sequence

from absl import app
import jax
import jax.numpy as jnp

from benchmarks import harness
from rigl_jax.sparse import topology

# The largest sparsified layer of WRN-22-2 and of ResNet-50.
SIZES = {
    'WRN-22-2 (3x3x128x128)': 147_456,
    'ResNet-50 (3x3x512x512)': 2_359_296,
}


def sort_top_k_mask(scores: jax.Array, k: jax.Array) -> jax.Array:
  flat = scores.reshape(-1)
  order = jnp.argsort(-flat, stable=True)
  return (
      jnp.zeros(flat.shape, bool)
      .at[order]
      .set(jnp.arange(flat.size) < k)
      .reshape(scores.shape)
  )


def table(sizes: dict[str, int] = SIZES) -> str:
  """The Markdown table of every layer size in ``sizes``."""
  rows = []
  for name, size in sizes.items():
    scores = jax.random.normal(jax.random.PRNGKey(0), (size,))
    k = jnp.asarray(size // 10)
    radix, sort = jax.jit(topology.top_k_mask), jax.jit(sort_top_k_mask)
    assert bool(jnp.all(radix(scores, k) == sort(scores, k)))
    seconds = harness.time_interleaved(
        {'radix': lambda: radix(scores, k), 'sort': lambda: sort(scores, k)},
        warmup=2,
        repeats=15,
    )
    rows.append(
        [
            name,
            f'{seconds["radix"] * 1e3:.1f}',
            f'{seconds["sort"] * 1e3:.1f}',
            f'{seconds["sort"] / seconds["radix"]:.1f}',
        ]
    )
  return harness.markdown_table(
      ('layer', 'radix select ms', 'stable argsort ms', 'sort / radix'), rows
  )


def main(argv: Sequence[str]) -> None:
  del argv
  print(table())


if __name__ == '__main__':
  app.run(main)
