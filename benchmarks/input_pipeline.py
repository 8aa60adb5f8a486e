r"""Input pipelines: examples/s delivered against examples/s the step consumes.

For each data set, in one process:

- host: the Grain pipeline alone (loading, batching; decoding and crops
  for ImageNet), with 0 (in the consuming thread), 1 and 2 worker
  processes;
- streamed: host batches moved to the devices by the trainer's prefetch
  thread, then the data set's device preprocessing (augmentation,
  normalization) compiled;
- resident: the default for in-memory data sets, the batch gathered on the
  devices from the training set held there, then the same preprocessing;
- consumed: examples/s of the config's compiled train step (RigL, plain
  step), which the input has to keep up with.

ImageNet-style input decodes synthetic JPEGs of ImageNet's typical size
(500x375, smooth content plus noise, quality 90) through the real
ImageNet loader; its train step is ResNet-50 at ``--imagenet_image_size``
and ``--imagenet_batch``. The same script runs unchanged on a GPU (pass
the real sizes there).

  python -m benchmarks.input_pipeline --cifar_dir=../shared/data/cifar10 \
      --mnist_dir=../shared/data/mnist \
      --shakespeare_dir=../shared/data/tinyshakespeare
"""

import io
import time
from collections.abc import Callable, Sequence
from typing import Any

from absl import app
from absl import flags
import jax
import numpy as np
from PIL import Image

from benchmarks import harness
from rigl_jax import data
from rigl_jax.training import config as run_config
from rigl_jax.training import compiled as compiled_lib
from rigl_jax.data import device_feed
from rigl_jax.data import imagenet

WORKERS = (0, 1, 2)


def synthetic_jpegs(
    count: int, rng: np.random.Generator, size: tuple[int, int] = (500, 375)
) -> list[dict[str, Any]]:
  """ImageNet-like records: smooth colour fields with noise, as JPEG."""
  records = []
  for _ in range(count):
    coarse = rng.integers(0, 256, (6, 8, 3), np.uint8)
    smooth = np.asarray(
        Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
    )
    noisy = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(noisy.astype(np.uint8)).save(
        buffer, format='JPEG', quality=90
    )
    records.append(
        {'image': buffer.getvalue(), 'label': np.int64(rng.integers(0, 1000))}
    )
  return records


def examples_per_second(
    next_batch: Callable[[], Any], batch_size: int, seconds: float
) -> float:
  """Examples/s of ``next_batch`` over about ``seconds``, after a warm-up."""
  jax.block_until_ready(next_batch())
  count, start = 0, time.perf_counter()
  while True:
    result = next_batch()
    count += 1
    elapsed = time.perf_counter() - start
    if elapsed > seconds:
      break
  jax.block_until_ready(result)
  return count * batch_size / (time.perf_counter() - start)


def host_rates(
    pipeline_for: Callable[[int], Any], batch_size: int, seconds: float
) -> dict[str, float]:
  rates = {}
  for workers in WORKERS:
    batches = pipeline_for(workers).train_batches()
    label = {0: 'host, in the consuming thread', 1: 'host, 1 worker'}.get(
        workers, f'host, {workers} workers'
    )
    rates[label] = examples_per_second(
        lambda: next(batches), batch_size, seconds
    )
    device_feed.close(batches)
  return rates


def device_rates(
    config: Any, pipeline: Any, seconds: float
) -> dict[str, float]:
  """Streamed (and resident, if in memory) input with device preprocessing."""
  shardings = compiled_lib.Shardings.of(compiled_lib.create_mesh())
  preprocess = data.device_preprocess(config.dataset.name)
  batch_size = config.batch_size
  rates = {}
  prepare = jax.jit(
      lambda batch, step: preprocess(batch, jax.random.key(step), True)
  )
  batches = device_feed.device_batches(
      pipeline.train_dataset(), shardings.batch
  )
  step = iter(range(2**62))
  rates['streamed + device preprocessing'] = examples_per_second(
      lambda: prepare(next(batches), next(step)), batch_size, seconds
  )
  device_feed.close(batches)
  if pipeline.train.arrays is not None:
    feed = device_feed.Resident(
        pipeline, shardings.replicated, shardings.index_table
    )
    gather = jax.jit(
        lambda inputs, step: preprocess(
            device_feed.Resident.batch(inputs, step), jax.random.key(step), True
        )
    )
    step = iter(range(2**62))

    def resident_batch():
      s = next(step)
      return gather(feed.inputs(s), s)

    rates['resident + device preprocessing'] = examples_per_second(
        resident_batch, batch_size, seconds
    )
  return rates


def consumed(
    config_path: str, overrides: dict[str, Any], repeats: int
) -> float:
  """Examples/s of the config's compiled RigL plain step."""
  bench = harness.build(config_path, 'rigl', overrides)
  seconds = harness.time_interleaved(
      {'step': bench.chain(bench.plain_step)}, warmup=2, repeats=repeats
  )['step']
  return bench.setup.data.batch_size / seconds


def measure_dataset(
    name: str,
    config_path: str,
    overrides: dict[str, Any],
    seconds: float,
    step_repeats: int,
    make_pipeline=None,
) -> list[list[str]]:
  config = run_config.resolve(
      run_config.set_values(run_config.load(config_path), overrides)
  )

  def pipeline_for(workers: int):
    with config.unlocked():
      config.dataset.num_workers = workers
    if make_pipeline is not None:
      return make_pipeline(config)
    return data.create_pipeline(config)

  rates = host_rates(pipeline_for, config.batch_size, seconds)
  rates.update(device_rates(config, pipeline_for(0), seconds))
  step_rate = consumed(config_path, overrides, step_repeats)
  return [
      [name, config.batch_size, path, f'{rate:,.0f}', f'{rate / step_rate:.1f}']
      for path, rate in rates.items()
  ] + [
      [
          name,
          config.batch_size,
          'consumed by the train step',
          f'{step_rate:,.0f}',
          '1.0',
      ]
  ]


def table(rows: Sequence[Sequence[Any]]) -> str:
  return harness.markdown_table(
      ('data set', 'batch', 'input path', 'examples/s', 'input / train step'),
      rows,
  )


def measure_all(
    mnist_dir: str,
    cifar_dir: str,
    shakespeare_dir: str,
    imagenet_image_size: int,
    imagenet_batch: int,
    imagenet_images: int = 512,
    seconds: float = 5.0,
    step_repeats: int = 5,
) -> list[list[str]]:
  """Rows of every data set whose directory is given, and ImageNet-style."""
  rows = []
  for name, config_path, local_dir in (
      ('MNIST', 'configs/mnist_lenet300.py', mnist_dir),
      ('CIFAR-10', 'configs/cifar10_wrn22_2.py', cifar_dir),
      ('Tiny Shakespeare', 'configs/shakespeare_gru.py', shakespeare_dir),
  ):
    if local_dir:
      rows += measure_dataset(
          name,
          config_path,
          {'dataset.local_dir': local_dir},
          seconds,
          step_repeats,
      )
  records = synthetic_jpegs(imagenet_images, np.random.default_rng(0))
  rows += measure_dataset(
      'ImageNet-style',
      'configs/imagenet_resnet50.py',
      {
          'dataset.image_size': imagenet_image_size,
          'batch_size': imagenet_batch,
          'eval_batch_size': imagenet_batch,
      },
      seconds,
      step_repeats,
      make_pipeline=lambda config: imagenet.make_pipeline(
          records,
          records[: config.eval_batch_size],
          config=config,
          process_index=0,
          process_count=1,
      ),
  )
  return rows


def main(argv: Sequence[str]) -> None:
  del argv
  print(
      table(
          measure_all(
              _MNIST_DIR.value,
              _CIFAR_DIR.value,
              _SHAKESPEARE_DIR.value,
              _IMAGENET_IMAGE_SIZE.value,
              _IMAGENET_BATCH.value,
              _IMAGENET_IMAGES.value,
              _SECONDS.value,
              _STEP_REPEATS.value,
          )
      )
  )


if __name__ == '__main__':
  _MNIST_DIR = flags.DEFINE_string(
      'mnist_dir', '../shared/data/mnist', 'MNIST IDX files ("" skips MNIST).'
  )
  _CIFAR_DIR = flags.DEFINE_string(
      'cifar_dir',
      '../shared/data/cifar10',
      'The CIFAR-10 JPEG zip ("" skips it).',
  )
  _SHAKESPEARE_DIR = flags.DEFINE_string(
      'shakespeare_dir',
      '../shared/data/tinyshakespeare',
      'Tiny Shakespeare input.txt ("" skips it).',
  )
  _IMAGENET_IMAGES = flags.DEFINE_integer(
      'imagenet_images', 512, 'Synthetic JPEGs to cycle through.'
  )
  _IMAGENET_IMAGE_SIZE = flags.DEFINE_integer(
      'imagenet_image_size', 224, 'Crop size of ImageNet-style input.'
  )
  _IMAGENET_BATCH = flags.DEFINE_integer(
      'imagenet_batch', 16, 'Batch of ImageNet-style input and its step.'
  )
  _SECONDS = flags.DEFINE_float(
      'seconds', 5.0, 'Time spent on each input path.'
  )
  _STEP_REPEATS = flags.DEFINE_integer(
      'step_repeats', 5, 'Timed train steps per data set.'
  )
  app.run(main)
