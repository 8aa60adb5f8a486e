r"""End-to-end training speed against the bare compiled steps, side by side.

For the main job (LeNet-300-100 on MNIST, RigL at 90% ERK) and its dense
counterpart, in one process:

- end to end: ``train_and_evaluate`` on the real data, its steps/s as
  results.json reports them (compilation and evaluation left out; input,
  logging, summaries and checkpoints counted);
- bare: the run's own compiled steps (plain and update steps on the
  method's schedule, built by the trainer's functions for the same config
  and data) called back to back on the inputs of step 0, already on the
  devices, waiting for the devices every ``log_every_steps`` steps as the
  loop does (without a wait the host would queue thousands of steps).

Rounds alternate the runs; each round's ratios are taken from its own
runs, and the medians over rounds reported: end to end / bare (what input,
logging, summaries and checkpoints cost) and RigL / dense.

  python -m benchmarks.end_to_end --mnist_dir=../shared/data/mnist
"""

import statistics
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from absl import app
from absl import flags
import jax

from benchmarks import harness
from rigl_jax.training import config as run_config
from rigl_jax.training import steps
from rigl_jax.training import build as build_lib
from rigl_jax.training import compiled as compiled_lib
from rigl_jax.training import loop

CONFIG = 'configs/mnist_lenet300.py'


def bare_steps_per_second(
    config_path: str, method: str, overrides: dict[str, Any]
) -> float:
  """Steps/s of the run's compiled steps, back to back, on fixed inputs."""
  config = run_config.set_values(
      run_config.load(config_path), {**overrides, 'method': method}
  )
  setup = build_lib.build(config)
  shardings = compiled_lib.Shardings.of(compiled_lib.create_mesh())
  feed = compiled_lib.create_feed(
      setup.data, setup.data.create_pipeline(), shardings
  )
  compiled = compiled_lib.compile_steps(setup, shardings, feed)
  inputs = feed.inputs(0)
  state = compiled.init_state(jax.random.PRNGKey(0))
  metrics = compiled.empty_metrics(steps.TrainMetrics)
  num_steps = setup.intervals.num_train_steps
  kinds = [
      setup.method.changes_topology and bool(setup.method.is_update_step(step))
      for step in range(num_steps)
  ]
  jax.block_until_ready(state)
  start = time.perf_counter()
  for step, update in enumerate(kinds):
    state, metrics = compiled.train[update](state, metrics, inputs)
    if (step + 1) % setup.intervals.log_every_steps == 0:
      jax.block_until_ready(metrics)
  jax.block_until_ready(state)
  return num_steps / (time.perf_counter() - start)


def run(
    config_path: str, method: str, overrides: dict[str, Any], workdir: str
) -> dict[str, Any]:
  """The results of ``train_and_evaluate`` of the config in ``workdir``."""
  config = run_config.set_values(
      run_config.load(config_path), {**overrides, 'method': method}
  )
  return loop.train_and_evaluate(config, workdir)


def end_to_end_steps_per_second(
    config_path: str, method: str, overrides: dict[str, Any]
) -> float:
  with tempfile.TemporaryDirectory() as workdir:
    return run(config_path, method, overrides, workdir)['steps_per_second']


def measure(
    mnist_dir: str, multiplier: float, rounds: int
) -> dict[str, list[float]]:
  """Steps/s of every run, and the ratios of each round.

  A round runs the four measurements back to back, so its ratios compare
  runs minutes apart at most; the medians over rounds are reported.
  """
  overrides = {
      'dataset.local_dir': mnist_dir,
      'training_multiplier': multiplier,
  }
  results = {}
  for _ in range(rounds):
    rates = {}
    for method in ('rigl', 'dense'):
      rates[method, 'end to end'] = end_to_end_steps_per_second(
          CONFIG, method, overrides
      )
      rates[method, 'bare'] = bare_steps_per_second(CONFIG, method, overrides)
    for method in ('rigl', 'dense'):
      results.setdefault(f'{method} end to end', []).append(
          rates[method, 'end to end']
      )
      results.setdefault(f'{method} bare', []).append(rates[method, 'bare'])
      results.setdefault(f'{method} end to end / bare', []).append(
          rates[method, 'end to end'] / rates[method, 'bare']
      )
    results.setdefault('rigl / dense, end to end', []).append(
        rates['rigl', 'end to end'] / rates['dense', 'end to end']
    )
    results.setdefault('rigl / dense, bare', []).append(
        rates['rigl', 'bare'] / rates['dense', 'bare']
    )
  return results


def table(results: dict[str, list[float]]) -> str:
  rows = [
      [
          name,
          f'{statistics.median(values):.3f}'
          if '/' in name
          else f'{statistics.median(values):.0f}',
          ', '.join(f'{v:.3f}' if '/' in name else f'{v:.0f}' for v in values),
      ]
      for name, values in results.items()
  ]
  return harness.markdown_table(('quantity', 'median', 'each round'), rows)


def main(argv: Sequence[str]) -> None:
  del argv
  print(table(measure(_MNIST_DIR.value, _MULTIPLIER.value, _ROUNDS.value)))


if __name__ == '__main__':
  _MNIST_DIR = flags.DEFINE_string(
      'mnist_dir', '../shared/data/mnist', 'The MNIST IDX files.'
  )
  _MULTIPLIER = flags.DEFINE_float(
      'multiplier',
      1.0,
      'Training multiplier: scales the 12,000 steps and '
      'every schedule with them.',
  )
  _ROUNDS = flags.DEFINE_integer('rounds', 3, 'Rounds of the four runs.')
  app.run(main)
