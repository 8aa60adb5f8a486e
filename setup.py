"""rigl_jax: sparse neural-network training in JAX (RigL and its baselines)."""

import setuptools

# Nothing here imports TensorFlow. Lower bounds are loose and there are no
# upper bounds below the next breaking JAX release, so `pip install -e .`
# keeps the CUDA or TPU build of JAX a machine already has.
INSTALL_REQUIRES = [
    'absl-py>=1.4',
    'etils[epath]>=1.5',
    'flax>=0.10.4',
    'grain>=0.2.10',
    'jax>=0.10.0,<0.13',
    'ml_collections>=0.1.1',
    'numpy>=1.26',
    'optax>=0.2.4',
    'orbax-checkpoint>=0.11',
    'pillow>=10',
    'tensorboardX>=2.6',
]

EXTRAS_REQUIRE = {
    # Reading data sets prepared by TFDS (ArrayRecord files), e.g. ImageNet.
    'tfds': ['tensorflow-datasets>=4.9.9', 'array_record>=0.5'],
    # Preparing TFDS data sets (download, decode, write records) and the
    # WikiText-103 builder: TFDS's writers use TensorFlow.
    'prepare': [
        'tensorflow-datasets>=4.9.9',
        'array_record>=0.5',
        'tensorflow-cpu>=2.16',
        # tensorflow-datasets 4.9 imports it but declares it only for
        # Python < 3.9.
        'importlib_resources>=6',
    ],
    # Plots of scripts/report.py.
    'plots': ['matplotlib>=3.8'],
}
EXTRAS_REQUIRE['test'] = sorted(
    set(EXTRAS_REQUIRE['prepare'] + EXTRAS_REQUIRE['plots']) | {
        'pytest>=8',
        'pytest-xdist>=3.5',
        'hypothesis>=6.100',
    })

setuptools.setup(
    name='rigl_jax',
    version='0.1.0',
    description='Sparse neural-network training in JAX: RigL and its baselines.',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=setuptools.find_packages(include=['rigl_jax', 'rigl_jax.*']),
    python_requires='>=3.10',
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    license='Apache-2.0',
)
