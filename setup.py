"""rigl_jax: sparse neural-network training in JAX (RigL and its baselines)."""

import setuptools

INSTALL_REQUIRES = [
    'absl-py>=2.1,<3',
    'clu==0.0.12',
    'flax>=0.12.8,<0.13',
    'jax>=0.10.2,<0.11',
    'jaxlib>=0.10.2,<0.11',
    'ml_collections>=1.1,<1.2',
    'numpy>=1.26',
    'optax>=0.2.8,<0.3',
    'orbax-checkpoint>=0.12.8,<0.13',
    # Input pipelines and clu's metric writers use TensorFlow; the sparse core
    # (rigl_jax/*.py outside data/ and train*) does not import it.
    'tensorflow-cpu>=2.21,<2.22',
    'tensorflow-datasets>=4.9.10,<4.10',
    # tensorflow-datasets 4.9 imports it but declares it only for Python < 3.9.
    'importlib_resources>=6',
    'tensorboard>=2.21,<2.22',
    'matplotlib>=3.8',
]

TEST_REQUIRES = [
    'pytest>=8',
    'pytest-xdist>=3.5',
    'hypothesis>=6.100',
]

setuptools.setup(
    name='rigl_jax',
    version='0.1.0',
    description='Sparse neural-network training in JAX: RigL and its baselines.',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=setuptools.find_packages(include=['rigl_jax', 'rigl_jax.*']),
    python_requires='>=3.10',
    install_requires=INSTALL_REQUIRES,
    extras_require={'test': TEST_REQUIRES},
    license='Apache-2.0',
)
