"""Input pipelines, one module per data set, in an explicit registry."""

from typing import Any, Callable

from rigl_jax.data import in_memory
from rigl_jax.data import mnist

# Each entry builds a pipeline from (config, process_index=, process_count=).
DATASETS: dict[str, Callable[..., Any]] = {
    'mnist': mnist.create_pipeline,
}


def create_pipeline(config: Any, *, process_index: int = 0,
                    process_count: int = 1) -> in_memory.InMemoryPipeline:
  """The input pipeline named by ``config.dataset.name``."""
  name = config.dataset.name
  if name not in DATASETS:
    raise ValueError(f'config.dataset.name must be one of {sorted(DATASETS)}, '
                     f'got {name!r}')
  return DATASETS[name](config, process_index=process_index,
                        process_count=process_count)
