"""RigL paper, WRN-22-2 on CIFAR-10 at full length (Section 4.3).

The authors' numbers (google-research/rigl issue 8): at 90% ERK RigL 92.9%,
Static 91.5%, pruning 93.3%, dense 94.1%; at 80% RigL 93.6%, Static 92.9%.
The runs are listed in the order they are worth running: 90% first, then
80%, then a second seed of each.
"""

CONFIG = 'configs/cifar10_wrn22_2.py'


def runs() -> list[dict[str, object]]:
  first = [dict(method='dense')] + [
      dict(method=m, sparsity=0.9) for m in ('static', 'set', 'rigl', 'pruning')
  ]
  second = [dict(method=m, sparsity=0.8) for m in ('rigl', 'static')]
  return [{**run, 'seed': seed} for seed in (0, 1) for run in first + second]
