"""Builds the compiled train steps of a config for a method, and times calls.

Benchmarks measure the code a run executes: the setup and the compiled
steps come from ``rigl_jax.training.build.build`` and ``compile_steps``, exactly as
a run makes them; only the batch is synthetic (random values of the shapes
and dtypes the data set's pipeline delivers).
"""

import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, Optional

import flax
import jax
import jaxlib
import numpy as np
import optax

from rigl_jax.training import config as run_config
from rigl_jax.training import steps
from rigl_jax.training import build as build_lib
from rigl_jax.training import compiled as compiled_lib
from rigl_jax.data import device_feed


@dataclasses.dataclass
class Bench:
  """A state, a batch and the compiled train steps of one method.

  ``plain_step`` and ``update_step`` are the executables a run uses:
  ``(state, metrics, batch) -> (state, metrics)`` with the state donated;
  ``update_step`` is None for methods that never change the topology.
  """

  method: str
  setup: build_lib.Setup
  compiled: compiled_lib.CompiledSteps
  state: Any
  batch: dict[str, jax.Array]
  plain_step: Callable[..., Any]
  update_step: Optional[Callable[..., Any]]

  def fresh_state(self) -> Any:
    """A copy of the initial state (steps donate the one they are given)."""
    return jax.tree.map(lambda x: x.copy(), self.state)

  def empty_metrics(self) -> steps.TrainMetrics:
    return self.compiled.empty_metrics(steps.TrainMetrics)

  def chain(self, step_fn: Callable[..., Any]) -> Callable[[], Any]:
    """A call that runs ``step_fn`` on the state the previous call returned.

    The state is donated, as in training, so every call needs its
    predecessor's output.
    """
    state, metrics = self.fresh_state(), self.empty_metrics()

    def call():
      nonlocal state, metrics
      state, metrics = step_fn(state, metrics, self.batch)
      return state

    return call


def build(config_path: str, method: str, overrides: dict[str, Any]) -> Bench:
  """The compiled steps of ``config_path`` with ``method`` and ``overrides``.

  The steps are compiled for batches sent from the host (a streamed feed),
  so they run on the synthetic batch without loading the data set.
  """
  config = run_config.set_values(
      run_config.load(config_path), {**overrides, 'method': method}
  )
  setup = build_lib.build(config)
  shardings = compiled_lib.Shardings.of(compiled_lib.create_mesh())
  feed = device_feed.Streamed(
      None, setup.data.batch_shapes(setup.data.batch_size), shardings.batch
  )
  compiled = compiled_lib.compile_steps(setup, shardings, feed)
  state = compiled.init_state(jax.random.PRNGKey(0))
  batch = jax.device_put(
      setup.data.random_batch(setup.data.batch_size, np.random.default_rng(0)),
      shardings.batch,
  )
  return Bench(
      method,
      setup,
      compiled,
      state,
      batch,
      compiled.train[False],
      compiled.train.get(True),
  )


def time_interleaved(
    calls: dict[str, Callable[[], Any]],
    *,
    warmup: int,
    repeats: int,
    back_to_back: int = 1,
) -> dict[str, float]:
  """Median seconds of each call, measured round-robin after warm-up.

  Interleaving spreads slow phases of the machine (other processes, thermal
  changes) over every call instead of penalizing whichever ran then. Each
  sample times ``back_to_back`` calls dispatched before one wait, as a
  training loop dispatches steps: on an accelerator a wait after every
  call would add the launch latency that training hides.
  """
  for call in calls.values():
    for _ in range(warmup):
      jax.block_until_ready(call())
  times: dict[str, list[float]] = {name: [] for name in calls}
  for _ in range(repeats):
    for name, call in calls.items():
      start = time.perf_counter()
      for _ in range(back_to_back - 1):
        call()
      jax.block_until_ready(call())
      times[name].append((time.perf_counter() - start) / back_to_back)
  return {name: statistics.median(t) for name, t in times.items()}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  lines = [
      '| ' + ' | '.join(header) + ' |',
      '|' + '|'.join('---' for _ in header) + '|',
  ]
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return '\n'.join(lines)


def cpu_name() -> str:
  """The processor model, as /proc/cpuinfo names it."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown CPU'


def machine() -> str:
  """The processor, accelerators, OS and library versions, in a line."""
  device = jax.devices()[0]
  accelerator = (
      ''
      if device.platform == 'cpu'
      else f', {len(jax.devices())} x {device.device_kind}'
  )
  return (
      f'{cpu_name()}, {os.cpu_count()} cores{accelerator}; '
      f'{platform.system()} {platform.release()}; Python '
      f'{platform.python_version()}; jax {jax.__version__}, jaxlib '
      f'{jaxlib.__version__}, flax {flax.__version__}, optax '
      f'{optax.__version__}'
  )
