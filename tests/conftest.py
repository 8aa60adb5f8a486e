"""Test settings shared by the whole suite."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from hypothesis import settings  # pylint: disable=g-import-not-at-top

# Every example jit-compiles a step; keep the count modest and the deadline
# off (compile times vary with machine load).
settings.register_profile('default', max_examples=20, deadline=None,
                          derandomize=True)
settings.load_profile('default')
