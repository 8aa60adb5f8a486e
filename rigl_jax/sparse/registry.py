"""Registries filled by scanning a package: each module declares what it
provides (a method's ``METHOD``, a model's ``MODEL``, a data set's
``DATASET``), so adding one is adding its module.

A name that is not registered but holds a dot names an importable module
outside the package, whose declaration is used: users keep their own
models and data sets in their own packages.
"""

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

from rigl_jax.sparse import checks

# module -> what it declares (empty if nothing); TypeError if malformed.
Declared = Callable[[ModuleType], tuple[Any, ...]]


def scan(
    path: Iterable[str],
    package: str,
    declared: Declared,
    kind: str,
    skip_packages: bool = False,
) -> dict[str, Any]:
  """{name: declaration} of the modules of ``package`` (at ``path``).

  Raises:
    TypeError: two modules declare the same name (naming both).
  """
  found, where = {}, {}
  for module_info in pkgutil.iter_modules(path):
    if skip_packages and module_info.ispkg:
      continue
    module = importlib.import_module(f'{package}.{module_info.name}')
    for item in declared(module):
      if item.name in found:
        raise TypeError(
            f'{module.__name__}: declares the {kind} {item.name!r}, '
            f'already declared by {where[item.name]}'
        )
      found[item.name] = item
      where[item.name] = module.__name__
  return found


def lookup(
    name: Any,
    registered: Mapping[str, Any],
    declared: Declared,
    *,
    key: str,
    attribute: str,
) -> Any:
  """The registered ``name``, or what the module ``name`` declares.

  Raises:
    checks.InvalidArgument: naming ``key``, listing the registered names.
  """
  if name in registered:
    return registered[name]
  if not (isinstance(name, str) and '.' in name):
    raise checks.InvalidArgument(
        key, f'must be one of {sorted(registered)}, got {name!r}'
    )
  try:
    module = importlib.import_module(name)
  except ImportError as e:
    raise checks.InvalidArgument(
        key,
        f'must be one of {sorted(registered)} or a module declaring '
        f'{attribute}; cannot import {name!r}: {e}',
    ) from None
  items = declared(module)
  checks.require(bool(items), key, f'module {name!r} declares no {attribute}')
  return items[0]
