"""Test settings shared by the whole suite."""

import os
import shutil
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# Tests check behaviour, not speed: LLVM's -O0 roughly halves the compile
# time that dominates them. Set before JAX starts; subprocesses inherit it.
os.environ['XLA_FLAGS'] = (
    os.environ.get('XLA_FLAGS', '') + ' --xla_backend_optimization_level=0'
).strip()
# Many tests compile the same tiny programs, in-process and in the runs they
# start: one persistent compilation cache for the session, shared by the
# xdist workers and their subprocesses through the environment (set here in
# the controller, before it starts them). The key covers XLA_FLAGS, so runs
# with other host device counts do not share entries.
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(
      prefix='rigl_jax_tests_xla_cache-'
  )
  _OWN_COMPILATION_CACHE = os.environ['JAX_COMPILATION_CACHE_DIR']
else:
  _OWN_COMPILATION_CACHE = None
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

from absl import flags  # pylint: disable=g-import-not-at-top
from hypothesis import settings  # pylint: disable=g-import-not-at-top

# Libraries read absl flags (Grain's workers do) as if under app.run.
flags.FLAGS.mark_as_parsed()

# Every example jit-compiles a step; keep the count modest and the deadline
# off (compile times vary with machine load).
settings.register_profile(
    'default', max_examples=20, deadline=None, derandomize=True
)
settings.load_profile('default')


import numpy as np  # pylint: disable=g-import-not-at-top,g-bad-import-order
import pytest  # pylint: disable=g-import-not-at-top,g-bad-import-order

from tests import fixtures  # pylint: disable=g-import-not-at-top


@pytest.fixture(scope='session')
def mnist_dir(tmp_path_factory) -> str:
  """A tiny MNIST in the original IDX format (learnable digit patterns)."""
  directory = tmp_path_factory.mktemp('mnist')
  fixtures.write_tiny_mnist(
      str(directory), num_train=512, num_test=200, rng=np.random.default_rng(0)
  )
  return str(directory)


def pytest_unconfigure(config):
  """Removes the compilation cache this session made (in the controller)."""
  if _OWN_COMPILATION_CACHE and not hasattr(config, 'workerinput'):
    shutil.rmtree(_OWN_COMPILATION_CACHE, ignore_errors=True)
