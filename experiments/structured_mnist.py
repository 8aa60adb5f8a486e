"""Structured sparsity on MNIST: N:M and constant fan-in against
unstructured masks, LeNet-300-100, three seeds each (66 runs).

- 90% and 98% ERK: RigL, SET and Static, unstructured and constant fan-in,
  and SRigL (constant fan-in with neuron ablation).
- 2:4 (50%) and 1:4 (75%), uniform (the first layer dense, as uniform
  keeps it): RigL, SET and Static, and unstructured RigL at the same
  sparsities.

  python scripts/sweep.py experiments/structured_mnist.py --root=/tmp/sweeps \
      --set=dataset.local_dir=../shared/data/mnist --run --parallel=2
"""

import itertools

CONFIG = 'configs/mnist_lenet300.py'
SEEDS = (0, 1, 2)
FAN_IN = {'mask_structure.kind': 'fan_in'}


def _erk_runs(sparsity: float, seed: int) -> list[dict[str, object]]:
  base = dict(sparsity=sparsity, distribution='erk', seed=seed)
  return [dict(method='srigl', **base)] + [
      dict(method=method, **base, **structure)
      for method, structure in itertools.product(
          ('rigl', 'set', 'static'), ({}, FAN_IN)
      )
  ]


def _n_m_runs(n: int, m: int, seed: int) -> list[dict[str, object]]:
  base = dict(sparsity=1 - n / m, distribution='uniform', seed=seed)
  n_m = {
      'mask_structure.kind': 'n_m',
      'mask_structure.n': n,
      'mask_structure.m': m,
  }
  return [dict(method='rigl', **base)] + [
      dict(method=method, **base, **n_m) for method in ('rigl', 'set', 'static')
  ]


def runs() -> list[dict[str, object]]:
  return [
      run
      for seed in SEEDS
      for run in (
          _erk_runs(0.9, seed)
          + _erk_runs(0.98, seed)
          + _n_m_runs(2, 4, seed)
          + _n_m_runs(1, 4, seed)
      )
  ]
