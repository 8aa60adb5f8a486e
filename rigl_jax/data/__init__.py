"""Input pipelines, one module per data set, in an explicit registry."""

from typing import Any, Callable

from rigl_jax.data import cifar10
from rigl_jax.data import imagenet
from rigl_jax.data import in_memory
from rigl_jax.data import mnist
from rigl_jax.data import tiny_shakespeare
from rigl_jax.data import wikitext103

# Each entry builds a pipeline from (config, process_index=, process_count=).
DATASETS: dict[str, Callable[..., Any]] = {
    'cifar10': cifar10.create_pipeline,
    'imagenet2012': imagenet.create_pipeline,
    'mnist': mnist.create_pipeline,
    'tiny_shakespeare': tiny_shakespeare.create_pipeline,
    'wikitext103': wikitext103.create_pipeline,
}


def create_pipeline(
    config: Any, *, process_index: int = 0, process_count: int = 1
) -> in_memory.InMemoryPipeline | imagenet.ImageNetPipeline:
  """The input pipeline named by ``config.dataset.name``."""
  name = config.dataset.name
  if name not in DATASETS:
    raise ValueError(f'config.dataset.name must be one of {sorted(DATASETS)}, '
                     f'got {name!r}')
  return DATASETS[name](config, process_index=process_index,
                        process_count=process_count)
