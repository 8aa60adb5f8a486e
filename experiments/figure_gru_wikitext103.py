"""RigL paper, character-level GRU language model on WikiText-103."""

import itertools

CONFIG = 'configs/wikitext103_gru.py'


def runs() -> list[dict[str, object]]:
  return [dict(method='dense')] + [
      dict(method=m, sparsity=s)
      for m, s in itertools.product(
          ('small_dense', 'static', 'set', 'snfs', 'rigl', 'pruning'),
          (0.75, 0.9),
      )
  ]
