"""The models, batch sizes and input sizes the benchmarks run."""

# name -> (config file, overrides). Each config's default method settings,
# sparsity and distribution apply (ΔT = 100 everywhere).
WORKLOADS = {
    'LeNet-300-100': ('configs/mnist_lenet300.py', {'batch_size': 100}),
    'WRN-22-2': ('configs/cifar10_wrn22_2.py', {'batch_size': 128}),
    # Full ResNet-50 at a CPU-sized batch and resolution.
    'ResNet-50': (
        'configs/imagenet_resnet50.py',
        {'batch_size': 16, 'dataset.image_size': 112},
    ),
}

# The sizes the papers train at, for an accelerator (scripts/gpu_check.sh):
# ResNet-50 in mixed precision as on TPUs and GPUs.
GPU_WORKLOADS = {
    'WRN-22-2': ('configs/cifar10_wrn22_2.py', {'batch_size': 128}),
    'ResNet-50 bf16': (
        'configs/imagenet_resnet50.py',
        {'batch_size': 256, 'dataset.image_size': 224, 'half_precision': True},
    ),
}

# GPU_WORKLOADS shrunk to seconds on a CPU (gpu_check.sh --smoke).
SMOKE_WORKLOADS = {
    'WRN-10 smoke': ('configs/cifar10_wrn22_2.py:smoke', {'batch_size': 8}),
    'ResNet-50 bf16 smoke': (
        'configs/imagenet_resnet50.py:smoke',
        {'batch_size': 4, 'dataset.image_size': 32, 'half_precision': True},
    ),
}


def lookup(name: str) -> tuple[str, dict[str, object]]:
  """The (config file, overrides) of the workload ``name``."""
  for table in (WORKLOADS, GPU_WORKLOADS, SMOKE_WORKLOADS):
    if name in table:
      return table[name]
  known = sorted({*WORKLOADS, *GPU_WORKLOADS, *SMOKE_WORKLOADS})
  raise ValueError(f'unknown workload {name!r}; known: {known}')


# Methods whose steady-state step is compared with the dense step.
STEP_METHODS = ('dense', 'static', 'set', 'snfs', 'rigl', 'pruning')
