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

# Methods whose steady-state step is compared with the dense step.
STEP_METHODS = ('dense', 'static', 'set', 'snfs', 'rigl', 'pruning')
